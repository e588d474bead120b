package ccda

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"io"
	"strings"
)

const (
	formatCodes  = "http://terminology.hl7.org/CodeSystem/v3-HL7DocumentFormatCodes"
	usCoreDocCat = "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category"
	usCoreRace   = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"
	usCoreEthnic = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity"
	cdcRaceOID   = "2.16.840.1.113883.6.238"
	cdaMediaType = "application/hl7-v3+xml"
)

// sourceSystem is the custodian organization's name, else the first
// author's organization.
func (c *conv) sourceSystem() string {
	org := c.doc.path("custodian", "assignedCustodian", "representedCustodianOrganization", "name")
	if s := oneLine(org.textContent()); s != "" {
		return s
	}
	for _, a := range c.doc.children("author") {
		if s := oneLine(a.path("assignedAuthor", "representedOrganization", "name").textContent()); s != "" {
			return s
		}
	}
	return ""
}

// OMB categories of the CDC race and ethnicity code system (US Core).
var (
	ombRace      = map[string]bool{"1002-5": true, "2028-9": true, "2054-5": true, "2076-8": true, "2106-3": true}
	ombEthnicity = map[string]bool{"2135-2": true, "2186-5": true}
)

// patient maps recordTarget/patientRole to a Patient.
func (c *conv) patient() error {
	role := c.doc.path("recordTarget", "patientRole")
	if role == nil {
		c.skip("Patient", "no recordTarget/patientRole in the document")
		return nil
	}
	ids := identifiers(role)
	c.patientID = c.patientResID(role, ids)
	p := role.child("patient")
	res := newObj("resourceType", "Patient", "id", c.patientID)
	res.set("extension", list(
		c.raceExtension(usCoreRace, ombRace, append(p.children("raceCode"), sdtcAll(p, "raceCode")...)),
		c.raceExtension(usCoreEthnic, ombEthnicity, append(p.children("ethnicGroupCode"), sdtcAll(p, "ethnicGroupCode")...)),
	))
	res.set("identifier", ids)
	res.set("name", mapNodes(p.children("name"), c.humanName))
	res.set("telecom", mapNodes(role.children("telecom"), contactPoint))
	g := p.child("administrativeGenderCode")
	switch {
	case g == nil:
	case g.attr("nullFlavor") == "UNK":
		res.set("gender", "unknown")
	case g.attr("nullFlavor") != "":
	default:
		switch strings.ToUpper(g.attr("code")) {
		case "M":
			res.set("gender", "male")
		case "F":
			res.set("gender", "female")
		case "UN":
			res.set("gender", "other")
		}
	}
	if bd := c.ts(p.child("birthTime")); bd != "" {
		if i := strings.IndexByte(bd, 'T'); i > 0 {
			bd = bd[:i]
		}
		res.set("birthDate", bd)
	}
	if dt := c.ts(p.sdtc("deceasedTime")); dt != "" {
		res.set("deceasedDateTime", dt)
	} else if d := p.sdtc("deceasedInd"); d != nil && d.attr("nullFlavor") == "" {
		switch d.attr("value") {
		case "true":
			res.set("deceasedBoolean", true)
		case "false":
			res.set("deceasedBoolean", false)
		}
	}
	res.set("address", mapNodes(role.children("addr"), c.address))
	res.set("maritalStatus", c.concept(p.child("maritalStatusCode")))
	var comms []any
	for _, lc := range p.children("languageCommunication") {
		code := lc.child("languageCode")
		if code.null() || code.attr("code") == "" {
			continue
		}
		cm := newObj("language", codeable("urn:ietf:bcp:47", code.attr("code"), ""))
		if pi := lc.child("preferenceInd"); pi != nil && pi.attr("value") == "true" {
			cm.set("preferred", true)
		}
		comms = append(comms, cm)
	}
	res.set("communication", comms)
	if org := oneLine(role.path("providerOrganization", "name").textContent()); org != "" {
		res.set("managingOrganization", newObj("display", org))
	}
	_, err := c.emit(res, role)
	return err
}

func sdtcAll(n *node, local string) []*node {
	if n == nil {
		return nil
	}
	var out []*node
	for _, k := range n.kids {
		if k.local == local && (k.space == nsSDTC || k.space == "sdtc") {
			out = append(out, k)
		}
	}
	return out
}

// raceExtension builds the US Core race or ethnicity extension from CDC
// race and ethnicity codes: OMB categories as ombCategory, others as
// detailed, and the text US Core requires.
func (c *conv) raceExtension(url string, omb map[string]bool, codes []*node) *obj {
	var parts []any
	var texts []string
	for _, n := range codes {
		if n.null() || n.attr("code") == "" || n.attr("codeSystem") != cdcRaceOID {
			continue
		}
		code := n.attr("code")
		slot := "detailed"
		if omb[code] {
			slot = "ombCategory"
		}
		disp := oneLine(n.attr("displayName"))
		parts = append(parts, newObj("url", slot, "valueCoding", newObj("system", "urn:oid:"+cdcRaceOID, "code", code, "display", disp)))
		if disp == "" {
			disp = code
		}
		texts = append(texts, disp)
	}
	if len(parts) == 0 {
		return nil
	}
	parts = append(parts, newObj("url", "text", "valueString", strings.Join(texts, ", ")))
	return newObj("url", url, "extension", parts)
}

// documentReference maps the whole document to a DocumentReference that
// carries the original bytes, so that nothing in the file is lost.
func (c *conv) documentReference() error {
	d := c.doc
	res := newObj("resourceType", "DocumentReference", "id", c.resID(d, "DocumentReference"))
	res.set("masterIdentifier", identifier(d.child("id")))
	res.set("identifier", list(identifier(d.child("setId"))))
	res.set("status", "current")
	typ := c.concept(d.child("code"))
	res.set("type", typ)
	res.set("category", list(codeable(usCoreDocCat, "clinical-note", "Clinical Note")))
	res.set("subject", c.patientRef())
	// The document is dated by its own effectiveTime (when it was
	// written), never by the period it covers. FHIR's date is an instant:
	// a time of day is needed, so a document dated by its day alone has
	// that day only in content.attachment.creation (a dateTime).
	if t := c.ts(d.child("effectiveTime")); strings.Contains(t, "T") {
		res.set("date", t)
	}
	var authors []any
	for _, a := range d.children("author") {
		aa := a.child("assignedAuthor")
		s := nameText(aa.path("assignedPerson", "name"))
		if s == "" {
			s = oneLine(aa.path("assignedAuthoringDevice", "softwareName").textContent())
		}
		if org := oneLine(aa.path("representedOrganization", "name").textContent()); org != "" {
			if s != "" {
				s += ", " + org
			} else {
				s = org
			}
		}
		if s != "" {
			authors = append(authors, newObj("display", s))
		}
	}
	res.set("author", authors)
	if c.system != "" {
		res.set("custodian", newObj("display", c.system))
	}
	for _, rd := range d.children("relatedDocument") {
		code := map[string]string{"RPLC": "replaces", "APND": "appends", "XFRM": "transforms"}[rd.attr("typeCode")]
		if id := identifier(rd.path("parentDocument", "id")); code != "" && id != nil {
			res.set("relatesTo", append(anyList(res.get("relatesTo")), newObj("code", code, "target", newObj("identifier", id))))
		}
	}
	title := oneLine(d.child("title").textContent())
	res.set("description", title)
	if conf := c.concept(d.child("confidentialityCode")); conf != nil {
		res.set("securityLabel", list(conf))
	}

	body := d.path("component", "nonXMLBody")
	bodyKind := "structuredBody"
	if body != nil {
		bodyKind = "nonXMLBody"
	}
	sum := sha1.Sum(c.data)
	att := newObj(
		"contentType", cdaMediaType,
		"language", d.child("languageCode").attr("code"),
		"data", safeString(base64.StdEncoding.EncodeToString(c.data)),
		"size", len(c.data),
		"hash", base64.StdEncoding.EncodeToString(sum[:]),
		"title", title,
		"creation", c.ts(d.child("effectiveTime")),
	)
	content := newObj("attachment", att)
	if v := c.docVersion; v == "1.1" || v == "2.1" {
		fc := "urn:hl7-org:sdwg:ccda-" + bodyKind + ":" + v
		content.set("format", newObj("system", formatCodes, "code", fc))
	}
	contents := []any{content}
	if body != nil {
		if emb := c.embedded(body.child("text")); emb != nil {
			contents = append(contents, newObj("attachment", emb))
		}
	}
	res.set("content", contents)

	ctxObj := &obj{}
	var events []any
	var period *obj
	for _, doc := range d.children("documentationOf") {
		se := doc.child("serviceEvent")
		if se == nil {
			continue
		}
		if cc := c.concept(se.child("code")); cc != nil {
			events = append(events, cc)
		}
		if period == nil {
			period = c.period(se.child("effectiveTime"))
		}
	}
	ee := d.path("componentOf", "encompassingEncounter")
	if period == nil {
		period = c.period(ee.child("effectiveTime"))
	}
	ctxObj.set("event", events)
	ctxObj.set("period", period)
	if ee != nil {
		enc := newObj("identifier", identifier(ee.child("id")), "display", c.concept(ee.child("code")).str("text"))
		if enc.has("identifier") {
			ctxObj.set("encounter", list(enc))
		}
		ctxObj.set("facilityType", c.concept(ee.path("location", "healthCareFacility", "code")))
	}
	res.set("context", ctxObj)
	_, err := c.emit(res, d)
	return err
}

func anyList(v any) []any { l, _ := v.([]any); return l }

// embedded decodes a nonXMLBody's text into an Attachment: the file with
// its mediaType (base64 decoded, decompressed), or a URL when the body only
// references it.
func (c *conv) embedded(t *node) *obj {
	if t == nil {
		return nil
	}
	media := t.attr("mediaType")
	if media == "" {
		media = "text/plain"
	}
	if ref := t.child("reference"); ref != nil && ref.attr("value") != "" {
		return newObj("contentType", media, "url", ref.attr("value"))
	}
	raw := []byte(t.ownText())
	if strings.EqualFold(t.attr("representation"), "B64") {
		clean := bytes.Map(func(r rune) rune {
			if r == ' ' || r == '\n' || r == '\r' || r == '\t' {
				return -1
			}
			return r
		}, raw)
		dec := make([]byte, base64.StdEncoding.DecodedLen(len(clean)))
		n, err := base64.StdEncoding.Decode(dec, clean)
		if err != nil {
			n, err = base64.RawStdEncoding.Decode(dec, bytes.TrimRight(clean, "="))
		}
		if err != nil {
			c.fail(t, fmt.Errorf("%w: invalid base64", ErrEmbedded))
			return nil
		}
		raw = dec[:n]
	}
	if comp := strings.ToUpper(t.attr("compression")); comp != "" {
		var r io.Reader
		var err error
		switch comp {
		case "DF":
			r = flate.NewReader(bytes.NewReader(raw))
		case "GZ":
			r, err = gzip.NewReader(bytes.NewReader(raw))
		case "ZL":
			r, err = zlib.NewReader(bytes.NewReader(raw))
		default:
			c.fail(t, fmt.Errorf("%w: compression %q is not supported", ErrEmbedded, comp))
			return nil
		}
		if err != nil {
			c.fail(t, fmt.Errorf("%w: %v", ErrEmbedded, err))
			return nil
		}
		out, err := io.ReadAll(io.LimitReader(r, MaxFileSize+1))
		if err != nil {
			c.fail(t, fmt.Errorf("%w: %v", ErrEmbedded, err))
			return nil
		}
		if len(out) > MaxFileSize {
			c.fail(t, fmt.Errorf("%w: decompressed file is over %d MiB", ErrTooLarge, MaxFileSize>>20))
			return nil
		}
		raw = out
	}
	if len(raw) == 0 {
		return nil
	}
	sum := sha1.Sum(raw)
	return newObj(
		"contentType", media,
		"data", safeString(base64.StdEncoding.EncodeToString(raw)),
		"size", len(raw),
		"hash", base64.StdEncoding.EncodeToString(sum[:]),
	)
}
