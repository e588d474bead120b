// Package applehealth imports Apple Health exports: the export.xml that the
// Health app writes (root element <HealthData>), either on its own or inside
// the export.zip the app shares (apple_health_export/export.xml).
//
// The package guarantees:
//   - the file is streamed with encoding/xml: memory stays bounded whatever
//     the size of the export (multi-gigabyte exports are normal), apart from
//     the daily aggregates (one per type, day and source) and the
//     blood-pressure readings held back until the end of the file to pair
//     them with their panels;
//   - every resource is deterministic: importing the same file twice gives
//     byte-identical resources (their id is a hash of their content), so
//     that the vault's content fingerprint deduplicates a re-import;
//   - the internal DTD that Apple writes is accepted, but any <!ENTITY
//     declaration is refused (ErrEntityDeclaration), and nesting deeper than
//     MaxDepth or a single token larger than MaxTokenBytes fails the file;
//   - errors name the file, line and element or attribute, never a value.
//
// What is mapped to what is written down in docs/formats/apple-health.md.
package applehealth
