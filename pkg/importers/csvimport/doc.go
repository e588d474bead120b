// Package csvimport imports the phr CSV template: one medication, lab
// result or vital sign per row, under a header row naming the columns
// (type, name, value, unit, date, end_date, code, code_system, status,
// note).
//
// The package guarantees:
//   - a header problem fails the whole file with an *importers.ParseError;
//     a bad row is reported on its own (sink.Fail) with its line and column,
//     and the other rows are imported;
//   - messages name the column and what is expected, never the value;
//   - input is bounded (MaxRowBytes, MaxFields, MaxRows) and streamed: a
//     row over MaxRowBytes stops reading at once, however long it is;
//   - vitals are built by record.ParseVital and record.NewVital, so they are
//     the same resources as "phr add vital" makes;
//   - resources are deterministic (no random ids, no import time inside),
//     so re-importing a file gives the same fingerprints.
//
// The template is documented in docs/formats/csv.md.
package csvimport
