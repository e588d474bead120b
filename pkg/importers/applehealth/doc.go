// Package applehealth imports Apple Health exports: the export.xml that the
// Health app writes (root element <HealthData>), either on its own or inside
// the export.zip the app shares (apple_health_export/export.xml).
//
// The package guarantees:
//   - the file is streamed with encoding/xml: memory stays bounded whatever
//     the size of the export (multi-gigabyte exports are normal). What is
//     held has its own bounds: one item and its children (MaxItemBytes),
//     the daily aggregates (one per type, day and source), the
//     blood-pressure readings held back until the end of the file to pair
//     them with their panels, and a zip's central directory
//     (MaxZipEntries, MaxZipDirectorySize);
//   - every resource is deterministic: importing the same file twice gives
//     byte-identical resources (their id is a hash of their content), so
//     that the vault's content fingerprint deduplicates a re-import;
//   - the internal DTD that Apple writes is accepted, but any <!ENTITY
//     declaration is refused (ErrEntityDeclaration), and so are an external
//     DTD and parameter entity references (ErrExternalDTD); nesting deeper
//     than MaxDepth, a token larger than MaxTokenBytes, or a start tag over
//     MaxNameBytes, MaxAttributes or MaxAttrBytes fails the file
//     (ErrTooLarge);
//   - in export.zip, export.xml is read, and the FHIR files of its
//     clinical records (through the fhir package's code); with the
//     "clinical-records" option, those beside an unpacked export.xml,
//     through an os.Root. Entries with absolute or .. names are ignored, a zip inside the zip is refused (ErrNestedZip),
//     and so is an export.xml over MaxExportSize or expanding more than
//     MaxCompressionRatio times (a zip bomb);
//   - errors name the file, line and element or attribute, never a value.
//
// What is mapped to what is written down in docs/formats/apple-health.md.
package applehealth
