// Package fhirdoc writes the FHIR documents phr makes of a patient's
// records: what a share holds and what `phr export` writes. pkg/share
// carries them (the SMART Health Links protocol); this package makes
// them, so that the CLI and phrd build the same bytes from the same
// records.
//
// # Shares
//
//   - BuildBundle: a Bundle of type collection, the patient first,
//     references resolved inside the bundle or cut (never followed out
//     of it), codes and units normalized as imports are;
//   - BuildIPS: an International Patient Summary 2.0.0 document
//     (docs/formats/ips.md), also `phr export --format ips`;
//   - BuildKTC: the CMS Kill-the-Clipboard PatientSharedBundle with its
//     PDF renderings (ProfileKTC), and CheckKTCPayload and CheckKTCBundle,
//     the profile's rules of a link and of its file, whose errors are
//     *share.FieldError values wrapping ErrKTC;
//   - BuildShare: the one choice among the three for a share (ShareDoc),
//     made the same way by phr share and by phrd.
//
// # Exports
//
// WriteNDJSON, WriteBundle and WriteCSV stream the records an Each gives
// them, one at a time, as NDJSON, a collection Bundle of the resources as
// stored, and the CSV template of docs/formats/csv.md.
//
// Nothing here reads or writes a vault, and the package links neither
// the storage engine nor the key library (internal/layering
// TestLightPackages). No error quotes a record's content: errors name a
// record by its ID, or a field of a bundle by its path.
package fhirdoc
