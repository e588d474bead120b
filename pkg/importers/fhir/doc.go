// Package fhir imports FHIR R4 JSON: single resources, Bundles of every
// type and files holding one bare Bundle entry (New, format "fhir"), and
// bulk-data NDJSON with one resource per line (NewNDJSON, format
// "ndjson"). ImportBundle and ImportJSON serve importers that find FHIR
// inside another container: SMART Health Cards, the clinical records of
// an Apple Health export.
//
// The package guarantees:
//   - every resource is kept whole, of every type, including types phr has
//     no model for; only whitespace is removed (JSON is compacted), and in
//     bundles references to other entries are rewritten (below);
//   - each Bundle entry becomes one record, the Bundle's Patients first
//     (the pipeline checks the file's subject before anything else);
//     Bundles nested in entries are imported entry by entry; searchset entries with search.mode "outcome"
//     and OperationOutcome resources are skipped with a reason, and so are
//     resources recognized as FHIR STU3 or DSTU2 (phr stores R4 only);
//   - references between entries of one bundle (urn:uuid:, urn:oid:,
//     absolute URLs and relative Type/id resolved against fullUrl) are
//     rewritten to "Type/id" of the target entry; an entry without an id is
//     given one (the uuid or oid of its fullUrl, the id in a RESTful
//     fullUrl, else a digest of its content), so that references and
//     re-imports are stable;
//   - importing the same bytes twice yields the same resources and
//     provenance, so the vault deduplicates them;
//   - input is bounded (MaxResourceSize, MaxFileSize, MaxEntries,
//     MaxBundleNesting, MaxJSONDepth) and malformed input is
//     reported as an *importers.ParseError (or, for one NDJSON line or one
//     bundle entry, an *importers.ItemError sent to Sink.Fail) naming the
//     file, line or byte offset and JSON path, never a value from the file,
//     and never a panic.
//
// Provenance.System is the resource's meta.source, else its Bundle's
// meta.source, without any "#fragment" (servers put a per-request id there);
// it is empty when the file does not say (Synthea). Provenance.OriginalID is
// the resource's id (as given or as assigned above).
//
// docs/formats/fhir.md and docs/formats/ndjson.md describe the mapping.
package fhir
