// Package record is phr's record model: an envelope around one FHIR R4
// resource, with the facts phr needs to list, search, date and deduplicate
// it, and provenance saying where it came from.
//
// The package guarantees:
//   - a Record carries its resource JSON as received; fields phr does not
//     understand are kept, never dropped. Imported and device resources
//     are normalized first, and only as Normalize says (placeholder
//     codings dropped, UCUM units labelled only when valid, published
//     names for codes without a display);
//   - the builders (NewMedication, NewVital, ...) return valid FHIR R4
//     resources with standard codes (LOINC, SNOMED CT) and UCUM units where
//     such codes exist, and reject bad input with an *InputError naming the
//     field;
//   - Kind, Date and Display are derived from the resource alone, so that
//     every importer and the vault agree on them.
//
// It does no I/O and knows nothing of encryption; see package vault.
package record
