package ccda

import (
	"strings"

	"github.com/phr-project/phr/pkg/record"
)

// This file holds the rules for naming an entry (the best name the
// document gives) and for recognizing the statements that say "none" or
// "no information" instead of naming anything.

// ipsAbsent is the IPS code system for absent and unknown data; its
// "no-known-..." codes are what the IPS value sets "Absent or Unknown
// Problems" and "Absent or Unknown Medication" hold (IPS 1.1.0).
const ipsAbsent = "http://hl7.org/fhir/uv/ips/CodeSystem/absent-unknown-uv-ips"

// Generic codes: a negated entry whose only code is one of these says
// "none" (no drug, no substance, no problem), not "not this one".
var (
	// Substances (allergy participant playingEntity): SNOMED CT
	// 105590001 Substance, 410942007 Drug or medicament, 373873005
	// Pharmaceutical / biologic product, 255620007 Foods.
	genericSubstances = map[string]bool{"105590001": true, "410942007": true, "373873005": true, "255620007": true}
	// Drugs (medication manufacturedMaterial).
	genericDrugs = map[string]bool{"410942007": true, "373873005": true}
	// Vaccines: SNOMED CT 71181003 (vaccine), CVX 998 (no vaccine
	// administered).
	genericVaccines = map[string]bool{"71181003": true, "998": true}
	// Problems (Problem Observation value): 55607006 Problem, 404684003
	// Clinical finding, 64572001 Disease.
	genericProblems = map[string]bool{"55607006": true, "404684003": true, "64572001": true}
	// Procedures: 71388002 Procedure.
	genericProcedures = map[string]bool{"71388002": true}
)

// placeholderCodes are codes that stand for no code (written in code
// instead of nullFlavor: code="UNK").
var placeholderCodes = map[string]bool{"UNK": true, "NI": true, "NA": true, "NASK": true, "ASKU": true, "NAV": true, "OTH": true, "UNKNOWN": true, "NULL": true}

// specific reports whether cc has a coding that is not one of the generic
// codes (nor a placeholder such as "UNK"): a code that names a particular
// thing.
func specific(cc *obj, generic map[string]bool) bool {
	if cc == nil {
		return false
	}
	cs, _ := cc.get("coding").([]any)
	for _, x := range cs {
		code := x.(*obj).str("code")
		if !generic[code] && !placeholderCodes[strings.ToUpper(code)] {
			return true
		}
	}
	return false
}

// dropGeneric removes the generic codings from cc (they say nothing the
// "no known ..." code does not) and returns it, or nil when nothing is
// left.
func dropGeneric(cc *obj, generic map[string]bool) *obj {
	if cc == nil {
		return nil
	}
	cs, _ := cc.get("coding").([]any)
	var keep []any
	for _, x := range cs {
		if !generic[x.(*obj).str("code")] {
			keep = append(keep, x)
		}
	}
	out := newObj("coding", keep, "text", cc.str("text"))
	if len(out.keys) == 0 {
		return nil
	}
	return out
}

// textKind classifies a name that stands alone (no code names the thing).
type textKind int

const (
	textName      textKind = iota // a name: "Costal chondritis"
	textNoneKnown                 // says there is none: "No Known Allergies", "No Problems indicated", "None"
	textNoInfo                    // says nothing is known: "No problem data is applicable", "Allergy excluded/not available", "Unknown"
)

// noInfoPhrases mark a text that says there is no information.
var noInfoPhrases = []string{
	"not available", "not applicable", "unavailable", "excluded", "not recorded", "not documented",
	"not asked", "no recorded", "not known", "unknown",
}

// noneWords, after a leading "no", mark a text that says there is none
// ("No Encounters Indicated", "No immunizations administered during
// visit"); without one of them a text starting with "no" is a name ("No
// appetite").
var noneWords = []string{
	"known", "indicated", "reported", "documented", "administered", "given", "taken", "history", "current",
	"active", "on file", "found", "entered", "listed", "problem", "medication", "drug", "allerg", "immuniz",
	"vaccin", "procedure", "encounter", "result", "diagnos", "device", "implant",
}

// classifyText tells a name from a statement of "none" or "no
// information". It is applied only to text that stands in for a missing
// code, never to coded entries.
func classifyText(s string) textKind {
	t := strings.ToLower(strings.Join(strings.Fields(s), " "))
	t = strings.TrimRight(t, ".!")
	switch t {
	case "":
		return textNoInfo
	case "unk", "n/a", "na", "not applicable", "not available", "unknown", "no information", "no info", "no data":
		return textNoInfo
	case "none", "no", "nil", "nka", "nkda", "nkfa", "nkma", "no allergies", "none known":
		return textNoneKnown
	}
	for _, p := range noInfoPhrases {
		if strings.Contains(t, p) {
			return textNoInfo
		}
	}
	if rest, ok := strings.CutPrefix(t, "no "); ok {
		// "No problem data is applicable", "No information about allergies"
		if strings.Contains(rest, "data") || strings.Contains(rest, "information") {
			return textNoInfo
		}
		for _, w := range noneWords {
			if strings.Contains(rest, w) {
				return textNoneKnown
			}
		}
	}
	if strings.HasPrefix(t, "none ") {
		return textNoneKnown
	}
	return textName
}

// named returns cc when it names something: it has a coding, or a text
// that is a name. Otherwise it returns nil and what the text says (no
// information, or none).
func named(cc *obj) (*obj, textKind) {
	if cc == nil {
		return nil, textNoInfo
	}
	if hasCoding(cc) {
		return cc, textName
	}
	if k := classifyText(cc.str("text")); k != textName {
		return nil, k
	}
	return cc, textName
}

// bestConcept is the best name the document gives for code: its code,
// translations and originalText (concept); when the code itself is
// missing or a nullFlavor and there is no originalText, the text is the
// displayName on the nullFlavor code, else the first of the fallback
// texts (the entry's own text, a playingEntity's name). A real code is
// never given a fallback text: an entry's text is often a whole narrative
// row, not a name; and a coded entry's text that says nothing is known is
// dropped. The result is nil when there is no name at all.
func (c *conv) bestConcept(code *node, fallback ...string) *obj {
	cc := c.concept(code)
	if cc != nil && cc.has("text") {
		if hasCoding(cc) && classifyText(cc.str("text")) == textNoInfo {
			// Words that say nothing is known are no name for a coded
			// entry (Partners: an encounter coded 371531000 with
			// originalText "No encounter diagnosis data is applicable").
			delete1(cc, "text")
		}
		return cc
	}
	if code != nil && code.attr("nullFlavor") == "" && code.attr("code") != "" {
		return cc
	}
	text := ""
	if code != nil {
		text = oneLine(code.attr("displayName"))
	}
	for _, f := range fallback {
		if text != "" {
			break
		}
		text = f
	}
	if text == "" {
		return cc
	}
	if cc == nil {
		return newObj("text", text)
	}
	cc.set("text", text)
	return cc
}

// noneKnown builds the CodeableConcept of a "no known ..." statement:
// the code, with the document's own words as text when they say the same
// (else the code's display).
func noneKnown(system, code, display, docText string) *obj {
	text := display
	if docText != "" && classifyText(docText) == textNoneKnown {
		text = docText
	}
	return newObj("coding", list(newObj("system", system, "code", code, "display", display)), "text", text)
}

// The "no known ..." codes phr writes.
var (
	noKnownProblems    = [3]string{ipsAbsent, "no-known-problems", "No known problems"}
	noKnownMedications = [3]string{ipsAbsent, "no-known-medications", "No known medications"}
	noKnownAllergy     = [3]string{record.SNOMED, snomedNKA, "No known allergy"}
)

// skipAbsent skips an entry of rt without a specific code, giving the
// reason its negation and words (absentKind) state: there are none
// (noneKnown), nothing is known, or it names nothing (noCode).
func (c *conv) skipAbsent(rt string, negated bool, words, noneKnown, noCode string) {
	switch absentKind(negated, words) {
	case textNoneKnown:
		c.skip(rt, noneKnown)
	case textNoInfo:
		c.skip(rt, reasonNoInfo)
	default:
		c.skip(rt, noCode)
	}
}

// absentKind says what an entry without a specific code states, from its
// negation and its words (said): there is none (textNoneKnown), nothing is
// known (textNoInfo), or neither (textName: the entry is skipped for
// want of a code). A negated entry says "none" unless its words say that
// nothing is known.
func absentKind(negated bool, said string) textKind {
	if said == "" {
		if negated {
			return textNoneKnown
		}
		return textName
	}
	switch k := classifyText(said); {
	case k == textNoneKnown || k == textNoInfo:
		return k
	case negated:
		return textNoneKnown
	}
	return textName
}

// Skip reasons shared by the sections.
const (
	reasonNoInfo   = "no information (the document says none is available)"
	reasonNullFlav = "no information (entry is a nullFlavor)"
	reasonNegated  = "negated (FHIR has no negated form of this resource)"
)

// genericWords are texts that name only the kind of entry ("Vaccination"
// as the vaccine of a negated "no immunizations" entry): no name.
var genericWords = map[string]bool{
	"vaccination": true, "vaccine": true, "vaccines": true, "immunization": true, "immunizations": true,
	"medication": true, "medications": true, "drug": true, "drugs": true, "drug or medication": true,
	"drug or medicament": true, "substance": true, "problem": true, "problems": true, "condition": true,
	"disease": true, "procedure": true, "procedures": true, "allergy": true, "allergies": true,
}

// names reports whether cc names a particular thing: a specific code, or
// words that are a name (not "none", not "unknown", not just the kind of
// entry).
func names(cc *obj, generic map[string]bool) bool {
	if specific(cc, generic) {
		return true
	}
	if cc == nil {
		return false
	}
	t := cc.str("text")
	return t != "" && !genericWords[strings.Trim(strings.ToLower(t), " .,;:")] && classifyText(t) == textName
}
