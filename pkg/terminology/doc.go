// Package terminology gives codes their published names and checks units
// of measure, from data embedded in the binary (no network, no files).
//
// The package guarantees:
//   - Display(system, code) returns only a name published for that code by
//     the terminology's own sources (HL7 code systems, the SNOMED CT Global
//     Patient Set, the CDC's CVX table, value sets of the IPS and US
//     Core); it never derives one.
//     Systems may be named by their canonical URI or by a known alias (an
//     OID as C-CDA writes it, "urn:oid:...", an older URI);
//   - UCUM(unit) accepts exactly the expressions of the UCUM grammar built
//     from UCUM's own atoms and prefixes, and returns them in canonical
//     case; it accepts a case-only variant only when UCUM's
//     case-insensitive forms read it one way;
//   - IsPlaceholder tells codes that stand for "no code" (HL7 null
//     flavors, "UNK", "Unknown") from real ones.
//
// Lookups are safe for concurrent use; the name table is decompressed on
// first use. docs/formats/terminology.md lists the sources, versions and
// licences, and how to regenerate the data (go generate).
package terminology
