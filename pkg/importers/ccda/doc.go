// Package ccda imports C-CDA documents (HL7 CDA R2 with the Consolidated
// CDA templates, R1.1, R2.0 and R2.1) of every document type: CCD,
// Referral Note, Discharge Summary, History and Physical, Progress,
// Consultation and Operative Notes, unstructured documents and others.
//
// The package guarantees:
//   - detection by content only: an XML document whose root element is
//     ClinicalDocument in the urn:hl7-org:v3 namespace, whatever the file is
//     called (.xml, .ccd, .txt);
//   - the whole document becomes a DocumentReference that carries the
//     original bytes (base64, with size and SHA-1 hash), and for a
//     nonXMLBody also the decoded embedded file, so nothing is lost;
//   - recordTarget becomes a Patient, and the entries of the allergies,
//     medications, problems, results, vital signs, immunizations,
//     procedures, encounters and social history sections become FHIR R4
//     resources (see docs/formats/ccda.md); sections are recognized by
//     templateId root whatever its extension, else by section LOINC code;
//   - entries that must not become records (no known allergies stated by
//     negation are mapped to the SNOMED "no known allergy" situations;
//     negated allergies and problems, planned acts, entries whose code is a
//     nullFlavor without original text, entries of sections not mapped yet)
//     are reported to Sink.Skip with a reason;
//   - resource ids are derived from the file's SHA-256 and the entry's
//     position, so importing the same bytes twice yields identical
//     resources and provenance and the vault deduplicates them;
//   - input is bounded (MaxFileSize, MaxDepth, MaxElements), DTDs and
//     entity declarations are refused, and malformed input is reported as
//     an *importers.ParseError naming the file, line and element path,
//     never a value from the file, and never a panic.
//
// Provenance.System is the custodian organization's name (else the first
// author's organization). Provenance.OriginalID is the entry's first id as
// "root^extension" (or "root"), empty when the entry has none, so that
// content-based deduplication applies.
package ccda
