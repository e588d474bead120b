package ccda

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/phr-project/phr/pkg/record"
)

// Code systems: C-CDA names them by OID, FHIR by URI. OIDs not listed
// become "urn:oid:<oid>", which FHIR also accepts.
var codeSystems = map[string]string{
	"2.16.840.1.113883.6.1":      record.LOINC,
	"2.16.840.1.113883.6.96":     record.SNOMED,
	"2.16.840.1.113883.6.88":     record.RxNorm,
	"2.16.840.1.113883.12.292":   record.CVX,
	"2.16.840.1.113883.6.59":     record.CVX, // HITSP-era OID for CVX, still in R1.1 exports
	"2.16.840.1.113883.6.90":     "http://hl7.org/fhir/sid/icd-10-cm",
	"2.16.840.1.113883.6.103":    "http://hl7.org/fhir/sid/icd-9-cm",
	"2.16.840.1.113883.6.3":      "http://hl7.org/fhir/sid/icd-10",
	"2.16.840.1.113883.6.4":      "http://www.cms.gov/Medicare/Coding/ICD10",
	"2.16.840.1.113883.6.69":     "http://hl7.org/fhir/sid/ndc",
	"2.16.840.1.113883.4.9":      "http://fdasis.nlm.nih.gov",
	"2.16.840.1.113883.6.12":     "http://www.ama-assn.org/go/cpt",
	"2.16.840.1.113883.6.285":    "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
	"2.16.840.1.113883.6.14":     "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
	"2.16.840.1.113883.3.26.1.1": "http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl",
	"2.16.840.1.113883.6.8":      record.UCUM,
	"2.16.840.1.113883.6.101":    "http://nucc.org/provider-taxonomy",
	"2.16.840.1.113883.12.227":   "http://hl7.org/fhir/sid/mvx",
	"2.16.840.1.113883.6.259":    "https://www.cdc.gov/nhsn/cdaportal/terminology/codesystem/hsloc.html",
	"2.16.840.1.113883.5.1":      "http://terminology.hl7.org/CodeSystem/v3-AdministrativeGender",
	"2.16.840.1.113883.5.2":      "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus",
	"2.16.840.1.113883.5.4":      "http://terminology.hl7.org/CodeSystem/v3-ActCode",
	"2.16.840.1.113883.5.6":      "http://terminology.hl7.org/CodeSystem/v3-ActClass",
	"2.16.840.1.113883.5.7":      "http://terminology.hl7.org/CodeSystem/v3-ActPriority",
	"2.16.840.1.113883.5.8":      "http://terminology.hl7.org/CodeSystem/v3-ActReason",
	"2.16.840.1.113883.5.14":     "http://terminology.hl7.org/CodeSystem/v3-ActStatus",
	"2.16.840.1.113883.5.25":     "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
	"2.16.840.1.113883.5.60":     "http://terminology.hl7.org/CodeSystem/v3-LanguageAbilityMode",
	"2.16.840.1.113883.5.61":     "http://terminology.hl7.org/CodeSystem/v3-LanguageAbilityProficiency",
	"2.16.840.1.113883.5.83":     "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
	"2.16.840.1.113883.5.85":     "http://terminology.hl7.org/CodeSystem/v3-orderableDrugForm",
	"2.16.840.1.113883.5.88":     "http://terminology.hl7.org/CodeSystem/v3-ParticipationFunction",
	"2.16.840.1.113883.5.90":     "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
	"2.16.840.1.113883.5.111":    "http://terminology.hl7.org/CodeSystem/v3-RoleCode",
	"2.16.840.1.113883.5.112":    "http://terminology.hl7.org/CodeSystem/v3-RouteOfAdministration",
	"2.16.840.1.113883.5.1008":   "http://terminology.hl7.org/CodeSystem/v3-NullFlavor",
	"2.16.840.1.113883.5.1063":   "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
	"2.16.840.1.113883.5.1076":   "http://terminology.hl7.org/CodeSystem/v3-ReligiousAffiliation",
}

// codeSystemNames maps the names some exports write in codeSystem instead
// of an OID (Partners writes codeSystem="SNOMED"), upper-cased.
var codeSystemNames = map[string]string{
	"SNOMED": record.SNOMED, "SNOMED CT": record.SNOMED, "SNOMED-CT": record.SNOMED, "SNOMEDCT": record.SNOMED,
	"LOINC": record.LOINC, "RXNORM": record.RxNorm, "CVX": record.CVX,
}

// Identifier systems with FHIR URIs of their own.
var idSystems = map[string]string{
	"2.16.840.1.113883.4.1": "http://hl7.org/fhir/sid/us-ssn",
	"2.16.840.1.113883.4.6": "http://hl7.org/fhir/sid/us-npi",
}

// systemURI maps a codeSystem OID to its FHIR URI.
func systemURI(oid string) string {
	oid = strings.TrimSpace(oid)
	if oid == "" {
		return ""
	}
	if u, ok := codeSystems[oid]; ok {
		return u
	}
	if isOID(oid) {
		return "urn:oid:" + oid
	}
	if isUUID(oid) {
		return "urn:uuid:" + strings.ToLower(oid)
	}
	return codeSystemNames[strings.ToUpper(oid)]
}

func isOID(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	prevDot := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.':
			if prevDot {
				return false
			}
			prevDot = true
		case c >= '0' && c <= '9':
			prevDot = false
		default:
			return false
		}
	}
	return !prevDot && strings.Contains(s, ".")
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		c := s[i]
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if c != '-' {
				return false
			}
			continue
		}
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// --- codes --------------------------------------------------------------

// coding maps one CD (or translation) to a Coding, or nil if it has no
// code.
func coding(n *node) *obj {
	if n == nil || n.attr("nullFlavor") != "" {
		return nil
	}
	code := n.attr("code")
	if code == "" {
		return nil
	}
	return newObj(
		"system", systemURI(n.attr("codeSystem")),
		"version", n.attr("codeSystemVersion"),
		"code", code,
		"display", oneLine(n.attr("displayName")),
	)
}

// concept maps a CD/CE/CV to a CodeableConcept: the code and its
// translations as codings, originalText (resolving references into the
// narrative) as text. It returns nil when there is nothing (a nullFlavor
// without translations or original text).
func (c *conv) concept(n *node) *obj {
	if n == nil {
		return nil
	}
	var codings []any
	seen := map[string]bool{}
	add := func(cd *obj) {
		if cd == nil {
			return
		}
		k := cd.str("system") + "|" + cd.str("code")
		if seen[k] {
			return
		}
		seen[k] = true
		codings = append(codings, cd)
	}
	add(coding(n))
	for _, t := range n.children("translation") {
		add(coding(t))
	}
	text := c.originalText(n)
	if len(codings) == 0 && text == "" {
		return nil
	}
	return newObj("coding", codings, "text", text)
}

// originalText returns the text of n/originalText (see childText).
func (c *conv) originalText(n *node) string { return c.childText(n, "originalText") }

// entryText returns the text of an entry's <text> (see childText).
func (c *conv) entryText(n *node) string { return c.childText(n, "text") }

// childText returns the text of n's child element name: where its
// <reference value="#id"/> points into the section narrative, that text,
// else the child's own content.
func (c *conv) childText(n *node, name string) string {
	t := n.child(name)
	if t == nil {
		return ""
	}
	if s := c.refText(t.child("reference")); s != "" {
		return s
	}
	return oneLine(t.ownText())
}

// refText resolves <reference value="#id"/> to the narrative text of the
// element with that ID.
func (c *conv) refText(ref *node) string {
	if ref == nil {
		return ""
	}
	v := ref.attr("value")
	id, ok := strings.CutPrefix(v, "#")
	if !ok || id == "" {
		return ""
	}
	if s, ok := c.refs[id]; ok {
		return s
	}
	s := ""
	if target := c.ids[id]; target != nil {
		s = oneLine(target.textContent())
	}
	c.refs[id] = s
	return s
}

// conceptHas reports whether the concept has a coding system|code.
func conceptHas(cc *obj, system string, codes ...string) bool {
	if cc == nil {
		return false
	}
	cs, _ := cc.get("coding").([]any)
	for _, x := range cs {
		cd := x.(*obj)
		if cd.str("system") != system {
			continue
		}
		for _, code := range codes {
			if cd.str("code") == code {
				return true
			}
		}
	}
	return false
}

func codeable(system, code, display string) *obj {
	return newObj("coding", list(newObj("system", system, "code", code, "display", display)))
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > maxText {
		s = s[:maxText]
		for len(s) > 0 && s[len(s)-1]&0xC0 == 0x80 {
			s = s[:len(s)-1]
		}
		if len(s) > 0 && s[len(s)-1] >= 0xC0 {
			s = s[:len(s)-1]
		}
	}
	return s
}

// --- numbers and quantities -----------------------------------------------

// number normalizes an HL7 REAL/INT literal to a JSON number, or reports
// false when it is not a finite number.
func number(s string) (json.Number, bool) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 64 {
		return "", false
	}
	if record.IsDecimal(s) {
		return json.Number(s), true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != f || f > 1e300 || f < -1e300 {
		return "", false
	}
	return json.Number(strconv.FormatFloat(f, 'f', -1, 64)), true
}

// ucumFixes maps unit strings that are common in C-CDA but are not UCUM
// to their UCUM codes.
var ucumFixes = map[string]string{
	"mmHg": "mm[Hg]", "mmhg": "mm[Hg]", "bpm": "/min", "beats/min": "/min", "breaths/min": "/min",
	"lb": "[lb_av]", "lbs": "[lb_av]", "in": "[in_i]", "inch": "[in_i]", "inches": "[in_i]",
	"degF": "[degF]", "F": "[degF]", "°F": "[degF]", "degC": "Cel", "C": "Cel", "°C": "Cel",
	"oz": "[oz_av]", "ft": "[ft_i]", "mcg": "ug",
}

// notUCUM holds unit words C-CDA files use that are not UCUM (lower-case,
// without a plural "s" or "(s)"): such a unit is kept as written, without
// the UCUM system. Whether any other unit is valid UCUM is decided
// centrally (pkg/record); these are only the ones known here not to be.
var notUCUM = map[string]bool{
	"tablet": true, "tab": true, "capsule": true, "cap": true, "puff": true, "unit": true, "spray": true,
	"drop": true, "patch": true, "application": true, "dose": true, "each": true, "ea": true, "vial": true,
	"ampule": true, "inhalation": true, "actuation": true, "gram": true, "packet": true, "lozenge": true,
	"suppository": true, "applicatorful": true, "scoop": true, "syringe": true, "pen": true, "bottle": true,
	"null": true,
}

func knownNotUCUM(unit string) bool {
	u := strings.ToLower(strings.TrimSpace(unit))
	u = strings.TrimSuffix(u, "(s)")
	if notUCUM[u] {
		return true
	}
	return strings.HasSuffix(u, "s") && notUCUM[strings.TrimSuffix(u, "s")]
}

// quantity maps a PQ to a Quantity, or nil without a usable value.
func quantity(n *node) *obj {
	if n == nil || n.attr("nullFlavor") != "" {
		return nil
	}
	v, ok := number(n.attr("value"))
	if !ok {
		return nil
	}
	q := newObj("value", v)
	unitQ(q, n.attr("unit"))
	return q
}

func unitQ(q *obj, unit string) {
	if unit == "" || unit == "1" || strings.EqualFold(unit, "null") {
		return
	}
	q.set("unit", unit)
	if knownNotUCUM(unit) {
		return
	}
	code := unit
	if f, ok := ucumFixes[unit]; ok {
		code = f
	}
	if !strings.ContainsAny(code, " \t") && len(code) <= 64 {
		q.set("system", record.UCUM)
		q.set("code", code)
	}
}

// --- identifiers ------------------------------------------------------------

// identifier maps an II to a FHIR Identifier: root and extension become
// system (urn:oid:, urn:uuid: or a known URI) and value; a root alone
// becomes value "urn:oid:..."/"urn:uuid:..." in system urn:ietf:rfc:3986.
func identifier(n *node) *obj {
	if n == nil || n.attr("nullFlavor") != "" {
		return nil
	}
	root, ext := n.attr("root"), n.attr("extension")
	if root == "" {
		if ext == "" {
			return nil
		}
		return newObj("value", ext)
	}
	uri := ""
	switch {
	case isOID(root):
		uri = "urn:oid:" + root
	case isUUID(root):
		uri = "urn:uuid:" + strings.ToLower(root)
	}
	if ext == "" {
		if uri == "" {
			return newObj("value", root)
		}
		return newObj("system", "urn:ietf:rfc:3986", "value", uri)
	}
	if s, ok := idSystems[root]; ok {
		uri = s
	}
	return newObj("system", uri, "value", ext)
}

// identifiers maps n's id children.
func identifiers(n *node) []any { return mapNodes(n.children("id"), identifier) }

// mapNodes maps each of nodes with f, leaving out what f maps to nil.
func mapNodes(nodes []*node, f func(*node) *obj) []any {
	var out []any
	for _, n := range nodes {
		if x := f(n); x != nil {
			out = append(out, x)
		}
	}
	return out
}

// originalID is the source id of an entry: "root^extension", or "root".
// It is empty when the entry has no usable id.
func originalID(n *node) string {
	for _, id := range n.children("id") {
		if id.attr("nullFlavor") != "" {
			continue
		}
		root, ext := id.attr("root"), id.attr("extension")
		switch {
		case root != "" && ext != "":
			return root + "^" + ext
		case root != "":
			return root
		}
	}
	return ""
}

// --- names, addresses, telecoms ----------------------------------------------

var nameUses = map[string]string{
	"L": "official", "OR": "official", "C": "official", "P": "nickname", "A": "nickname",
	"ASGN": "usual", "ANON": "anonymous", "TEMP": "temp",
}

// humanName maps a PN.
func (c *conv) humanName(n *node) *obj {
	if n == nil || n.attr("nullFlavor") != "" {
		return nil
	}
	h := &obj{}
	use := ""
	for _, u := range strings.Fields(n.attr("use")) {
		if m, ok := nameUses[u]; ok {
			use = m
			break
		}
	}
	var given, prefix, suffix []any
	family := ""
	parts := false
	for _, k := range n.elems() {
		t := oneLine(k.textContent())
		if strings.EqualFold(t, "null") {
			t = "" // a vendor bug: the word "null" for an absent part
		}
		switch k.local {
		case "given":
			parts = true
			if t != "" {
				given = append(given, t)
			}
		case "family":
			parts = true
			if family == "" {
				family = t
			}
			if use == "" && strings.Contains(k.attr("qualifier"), "BR") {
				use = "maiden"
			}
		case "prefix":
			parts = true
			if t != "" {
				prefix = append(prefix, t)
			}
		case "suffix":
			parts = true
			if t != "" {
				suffix = append(suffix, t)
			}
		}
	}
	h.set("use", use)
	if !parts {
		h.set("text", oneLine(n.ownText()))
	}
	h.set("family", family)
	h.set("given", given)
	h.set("prefix", prefix)
	h.set("suffix", suffix)
	h.set("period", c.period(n.child("validTime")))
	if !h.has("text") && !h.has("family") && !h.has("given") {
		return nil
	}
	return h
}

// nameText is a PN as one line ("Henry Seven"), for display references.
func nameText(n *node) string {
	if n == nil || n.attr("nullFlavor") != "" {
		return ""
	}
	var parts []string
	has := false
	for _, k := range n.elems() {
		switch k.local {
		case "given", "family", "prefix", "suffix":
			has = true
			if t := oneLine(k.textContent()); t != "" && !strings.EqualFold(t, "null") {
				parts = append(parts, t)
			}
		}
	}
	if !has {
		return oneLine(n.ownText())
	}
	return strings.Join(parts, " ")
}

var addrUses = map[string]string{"H": "home", "HP": "home", "HV": "home", "WP": "work", "DIR": "work", "PUB": "work", "TMP": "temp", "OLD": "old", "BAD": "old"}

// address maps an AD.
func (c *conv) address(n *node) *obj {
	if n == nil || n.attr("nullFlavor") != "" {
		return nil
	}
	a := &obj{}
	for _, u := range strings.Fields(n.attr("use")) {
		if m, ok := addrUses[u]; ok {
			a.set("use", m)
			break
		}
	}
	var lines []any
	parts := false
	for _, k := range n.elems() {
		if k.attr("nullFlavor") != "" {
			continue
		}
		t := oneLine(k.textContent())
		switch k.local {
		case "streetAddressLine":
			parts = true
			if t != "" {
				lines = append(lines, t)
			}
		case "city":
			parts = true
			a.set("city", t)
		case "state":
			parts = true
			a.set("state", t)
		case "postalCode":
			parts = true
			a.set("postalCode", t)
		case "country":
			parts = true
			a.set("country", t)
		case "county":
			parts = true
			a.set("district", t)
		}
	}
	if !parts {
		a.set("text", oneLine(n.ownText()))
	}
	a.set("line", lines)
	a.set("period", c.period(n.child("useablePeriod")))
	if len(a.keys) == 0 || (len(a.keys) == 1 && a.has("use")) {
		return nil
	}
	return a
}

var telUses = map[string]string{"H": "home", "HP": "home", "HV": "home", "WP": "work", "DIR": "work", "PUB": "work", "MC": "mobile", "PG": "mobile", "TMP": "temp", "BAD": "old", "OLD": "old"}

// contactPoint maps a TEL.
func contactPoint(n *node) *obj {
	if n == nil || n.attr("nullFlavor") != "" {
		return nil
	}
	v := n.attr("value")
	if v == "" {
		return nil
	}
	system := "phone"
	lower := strings.ToLower(v)
	switch {
	case strings.HasPrefix(lower, "tel:"):
		v = v[4:]
	case strings.HasPrefix(lower, "fax:"):
		system, v = "fax", v[4:]
	case strings.HasPrefix(lower, "mailto:"):
		system, v = "email", v[7:]
	case strings.HasPrefix(lower, "http:"), strings.HasPrefix(lower, "https:"):
		system = "url"
	case strings.Contains(v, "@"):
		system = "email"
	}
	v = strings.TrimSpace(v)
	if v == "" {
		return nil
	}
	cp := newObj("system", system, "value", v)
	for _, u := range strings.Fields(n.attr("use")) {
		if m, ok := telUses[u]; ok {
			cp.set("use", m)
			break
		}
	}
	return cp
}

// --- times -----------------------------------------------------------------

// tsToFHIR converts an HL7 TS value (YYYY, YYYYMM, YYYYMMDD,
// YYYYMMDDHH[MM[SS[.fff]]][+/-ZZ[ZZ]]) to a FHIR date or dateTime with the
// same precision. A time of day keeps its own offset; when the value has
// none, zone (the timezone option, else the document's own offset; may be
// nil) supplies it, and without either the time is written as it stands,
// without an offset ("2013-08-15T10:30:00"): inventing a zone would
// misstate the time and cutting it to the date would lose a fact (a
// documented deviation from FHIR, which wants a zone). The wall-clock time
// is never shifted. Invalid values give "".
func tsToFHIR(v string, zone *zoneSpec) string {
	v = strings.TrimSpace(v)
	if len(v) < 4 || len(v) > 40 {
		return ""
	}
	main, tz := v, ""
	if i := strings.IndexAny(v[4:], "+-"); i >= 0 {
		main, tz = v[:4+i], v[4+i:]
	}
	frac := ""
	if i := strings.IndexByte(main, '.'); i >= 0 {
		main, frac = main[:i], main[i+1:]
		if frac == "" || !allDigits(frac) || len(main) != 14 {
			frac = ""
			if len(main) != 14 {
				return ""
			}
		}
	}
	if !allDigits(main) {
		return ""
	}
	atoi := func(s string) int { n, _ := strconv.Atoi(s); return n }
	year := atoi(main[:4])
	if year < 1 {
		return ""
	}
	switch len(main) {
	case 4:
		return main
	case 6, 8, 10, 12, 14:
	default:
		return ""
	}
	month := atoi(main[4:6])
	if month < 1 || month > 12 {
		return ""
	}
	if len(main) == 6 {
		return main[:4] + "-" + main[4:6]
	}
	day := atoi(main[6:8])
	if day < 1 || day > daysIn(year, time.Month(month)) {
		return ""
	}
	date := main[:4] + "-" + main[4:6] + "-" + main[6:8]
	if len(main) == 8 {
		return date
	}
	hh, mm, ss := atoi(main[8:10]), 0, 0
	if len(main) >= 12 {
		mm = atoi(main[10:12])
	}
	if len(main) == 14 {
		ss = atoi(main[12:14])
	}
	if hh > 23 || mm > 59 || ss > 59 {
		return ""
	}
	offset, ok := parseZone(tz)
	if !ok && zone != nil {
		offset = zone.offsetAt(year, time.Month(month), day, hh, mm, ss)
	}
	out := date + "T" + twoDigits(hh) + ":" + twoDigits(mm) + ":" + twoDigits(ss)
	if frac != "" {
		out += "." + frac
	}
	return out + offset
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func twoDigits(n int) string {
	return string([]byte{byte('0' + n/10), byte('0' + n%10)})
}

func daysIn(year int, m time.Month) int {
	return time.Date(year, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// parseZone turns "+HHMM", "-HHMM" or "+HH" into "+HH:MM".
func parseZone(tz string) (string, bool) {
	if len(tz) != 5 && len(tz) != 3 {
		return "", false
	}
	if tz[0] != '+' && tz[0] != '-' || !allDigits(tz[1:]) {
		return "", false
	}
	hh, mm := tz[1:3], "00"
	if len(tz) == 5 {
		mm = tz[3:5]
	}
	h, _ := strconv.Atoi(hh)
	m, _ := strconv.Atoi(mm)
	if h > 14 || m > 59 {
		return "", false
	}
	return tz[:1] + hh + ":" + mm, true
}

// zoneSpec is the time zone assumed for times of day that carry none: a
// fixed offset or a location.
type zoneSpec struct {
	fixed string
	loc   *time.Location
}

func (z *zoneSpec) offsetAt(y int, m time.Month, d, hh, mm, ss int) string {
	if z.loc == nil {
		return z.fixed
	}
	return time.Date(y, m, d, hh, mm, ss, 0, z.loc).Format("-07:00")
}

// parseZoneOption reads the "timezone" option: an IANA name
// ("America/New_York"), "UTC", or an offset ("-0500", "+05:30").
func parseZoneOption(s string) (*zoneSpec, bool) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return nil, false
	case strings.EqualFold(s, "UTC") || s == "Z":
		return &zoneSpec{fixed: "+00:00"}, true
	case s[0] == '+' || s[0] == '-':
		if z, ok := parseZone(strings.ReplaceAll(s, ":", "")); ok {
			return &zoneSpec{fixed: z}, true
		}
		return nil, false
	}
	loc, err := time.LoadLocation(s)
	if err != nil {
		return nil, false
	}
	return &zoneSpec{loc: loc}, true
}

// zoneOf returns the zone of a TS value, if it has one.
func zoneOf(v string) (*zoneSpec, bool) {
	v = strings.TrimSpace(v)
	if len(v) <= 4 {
		return nil, false
	}
	i := strings.IndexAny(v[4:], "+-")
	if i < 0 {
		return nil, false
	}
	z, ok := parseZone(v[4+i:])
	if !ok {
		return nil, false
	}
	return &zoneSpec{fixed: z}, true
}

// ts converts a TS element's @value.
func (c *conv) ts(n *node) string {
	if n == nil || n.attr("nullFlavor") != "" {
		return ""
	}
	return tsToFHIR(n.attr("value"), c.zone)
}

// period maps an IVL_TS to a Period (low/high, or @value as both ends'
// start).
func (c *conv) period(n *node) *obj {
	if n == nil || n.attr("nullFlavor") != "" {
		return nil
	}
	p := newObj("start", c.ts(n.child("low")), "end", c.ts(n.child("high")))
	if len(p.keys) == 0 {
		if v := c.ts(n); v != "" {
			p.set("start", v)
		} else if v := c.ts(n.child("center")); v != "" {
			p.set("start", v)
		}
	}
	if len(p.keys) == 0 {
		return nil
	}
	return p
}

// effective sets prefix+"DateTime" or prefix+"Period" on res from an
// IVL_TS or TS: a point (@value, or center, or low and high equal) is a
// dateTime, else a Period.
func (c *conv) effective(res *obj, prefix string, n *node) {
	if n == nil || n.attr("nullFlavor") != "" {
		return
	}
	if v := c.ts(n); v != "" {
		res.set(prefix+"DateTime", v)
		return
	}
	lo, hi := c.ts(n.child("low")), c.ts(n.child("high"))
	switch {
	case lo != "" && hi == lo:
		res.set(prefix+"DateTime", lo)
	case lo != "" || hi != "":
		res.set(prefix+"Period", newObj("start", lo, "end", hi))
	default:
		if v := c.ts(n.child("center")); v != "" {
			res.set(prefix+"DateTime", v)
		}
	}
}

// pointTime returns the single time of an IVL_TS or TS: @value, else low,
// else center, else high.
func (c *conv) pointTime(n *node) string {
	if n == nil || n.attr("nullFlavor") != "" {
		return ""
	}
	for _, v := range []string{c.ts(n), c.ts(n.child("low")), c.ts(n.child("center")), c.ts(n.child("high"))} {
		if v != "" {
			return v
		}
	}
	return ""
}
