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
//   - negations and "none known" are said the FHIR way and never shown as
//     events: a negated allergy or problem is refuted, a negated drug
//     not-taken, a negated vaccine or procedure not-done with its refusal
//     reason; a negated allergy, problem or drug without a real code (or a
//     placeholder saying there are none) is the SNOMED CT "no known
//     allergy" or the IPS no-known-problems / no-known-medications
//     statement; nullified entries are kept as entered-in-error; other
//     entries that must not become records (placeholders whose words say
//     nothing is known, "no immunization history", negated observations and
//     encounters, planned acts, entries of sections not mapped yet) are
//     reported to Sink.Skip with a reason (see docs/formats/ccda.md);
//   - every entry is named by the best name the document gives: code and
//     translations, originalText, a nullFlavor code's displayName, the
//     entry's own text, a playingEntity's or material's name;
//   - times keep their precision and wall clock, never shifted: a time
//     without an offset takes the timezone option, else the document's own
//     offset, else none ("2013-08-15T10:30:00");
//   - the Patient comes first; resource ids derive from the patient's
//     identity and each resource's content (the DocumentReference's from
//     the file's SHA-256), so importing the same bytes twice yields
//     identical resources, and another export of the same record gives the
//     same clinical resources and references;
//   - input is bounded (MaxFileSize, MaxDepth, MaxElements), DTDs and
//     entity declarations are refused, and malformed input is reported as
//     an *importers.ParseError naming the file, line and element path,
//     never a value from the file, and never a panic.
//
// Provenance.System is the custodian organization's name (else the first
// author's organization). Provenance.OriginalID is the entry's first id as
// "root^extension" (or "root"), with "#2", "#3" ... for the second and
// later entries of one file that share an id (both are kept), and empty
// when the entry has none.
package ccda
