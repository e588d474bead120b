// Package pdfdoc renders a patient's records as PDF documents a person
// reads: Summary, a printable health summary a clinician can take in
// within a minute, and Story, the patient's own words on paper.
//
// Summary puts first who the patient is (name, birth date with age, sex,
// identifiers), when the document was made and from which sources, then
// allergies (high criticality first and marked), active medications,
// problems, recent results (with abnormal flags and reference ranges),
// vital signs (latest reading, count and a small trend chart per kind)
// and immunizations. With Options.Complete it appends every other
// record it was given, so that the PDF renders all of them (the
// Kill-the-Clipboard "FHIR-Rendered PDF" must).
//
// The facts read as the record states them:
//
//   - dates as written (record.When): a day is that day, a time of day
//     is the source's wall clock, never converted into another zone;
//   - names, not codes (record.DisplayOf, record.Resource.ConceptText,
//     the terminology's names), and units as people write them ("mmHg",
//     "°C", not "mm[Hg]", "Cel");
//   - a negation as a negation: a vaccine not given is listed as not
//     given with its reason, never among the vaccines given; a refuted
//     allergy or problem as ruled out; "no known ..." statements as
//     sentences; entered-in-error records never as facts;
//   - an empty section says that the record holds nothing for it, never
//     that the patient has none.
//
// Text is set in the Go fonts (golang.org/x/image/font/gofont), embedded
// as subsets, so the PDF carries Unicode text that tools can extract.
// Characters those fonts lack (CJK, for one) extract correctly but print
// as empty boxes. The output depends only on the input and Options.Now:
// the same records make the same bytes.
package pdfdoc
