package record

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"hash"
	"slices"
	"strconv"
	"strings"
	"time"
)

// FingerprintInput returns the bytes that identify r for deduplication, or
// nil if r must never be merged with another record (self-entered data: a
// patient may log the same dose twice).
//
// It is a digest of the record's source and its clinical content: the
// resource without its id, meta, narrative (text) and the targets of its
// references (which name other resources by ids that differ from one
// document to the next). Identifiers never make two records one: two
// resources that carry the same identifier but say different things have
// different fingerprints (see Identities for how the vault relates them).
// The source always takes part, so that the same medication from two
// providers stays two records. The vault keys the result with HMAC before
// it stores anything.
//
// The result is a SHA-256 digest of those facts (32 bytes).
func FingerprintInput(r *Record) []byte {
	in, _ := Fingerprint(r)
	return in
}

// Fingerprint returns FingerprintInput and the record's fingerprint
// cluster: a digest shared by records that are likely to be written
// together and whose fingerprints are the same only if their clusters
// are. The vault puts fingerprints of one cluster next to each other so
// that a batch of an import touches a few pages of its dedup index
// instead of one page per record. Records cluster by source, resource
// type and day of their date, all of which the content determines.
func Fingerprint(r *Record) (input, cluster []byte) {
	if r.fp != nil && r.fpFor == r.Provenance {
		return r.fp, r.fpCluster
	}
	return fingerprintInput(r, nil)
}

// fingerprintInput computes Fingerprint; res is the parsed resource, or
// nil to parse it.
func fingerprintInput(r *Record, res Resource) (input, cluster []byte) {
	if r.Provenance.Method == MethodSelf || r.Provenance.Method == "" {
		return nil, nil
	}
	src := r.Provenance.Source()
	if res == nil {
		var err error
		if res, err = Parse(r.Resource); err != nil {
			return join("raw", src, string(r.Resource)), nil
		}
	}
	h := sha256.New()
	h.Write([]byte("content\x00" + src + "\x00"))
	hashCanonical(h, map[string]any(res), true)
	input = h.Sum(nil)
	// The same content has the same type and date (DateOf reads neither
	// id, meta, text nor references), so equal inputs always have equal
	// clusters.
	day := ""
	if d := DateOf(res); !d.IsZero() {
		day = d.UTC().Format(time.DateOnly)
	}
	return input, join("cluster", src, res.Type(), day)
}

// hashCanonical writes v to h in a canonical form: object members in key
// order, strings quoted, numbers as written. At the top level (top) the
// resource's id, meta and narrative (text) are left out, and at every
// level the "reference" string of an object (a Reference's target, which
// names other resources by ids that differ from one document to the next;
// its display stays). It allocates only the sorted keys of each object.
func hashCanonical(h hash.Hash, v any, top bool) {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k, e := range x {
			if top && (k == "id" || k == "meta" || k == "text") {
				continue
			}
			if _, isString := e.(string); isString && k == "reference" {
				continue
			}
			keys = append(keys, k)
		}
		slices.Sort(keys)
		h.Write([]byte{'{'})
		for _, k := range keys {
			writeString(h, k)
			h.Write([]byte{':'})
			hashCanonical(h, x[k], false)
		}
		h.Write([]byte{'}'})
	case []any:
		h.Write([]byte{'['})
		for _, e := range x {
			hashCanonical(h, e, false)
			h.Write([]byte{','})
		}
		h.Write([]byte{']'})
	case string:
		writeString(h, x)
	case json.Number:
		h.Write([]byte{'n'})
		h.Write([]byte(x))
	case float64:
		h.Write([]byte{'n'})
		h.Write(strconv.AppendFloat(nil, x, 'g', -1, 64))
	case bool:
		if x {
			h.Write([]byte("t"))
		} else {
			h.Write([]byte("f"))
		}
	case nil:
		h.Write([]byte("z"))
	default:
		b, _ := json.Marshal(x)
		h.Write(b)
	}
}

// writeString writes s with its length first, so that no string can
// stand for a run of others.
func writeString(h hash.Hash, s string) {
	var n [binary.MaxVarintLen64]byte
	h.Write([]byte{'s'})
	h.Write(n[:binary.PutUvarint(n[:], uint64(len(s)))])
	h.Write([]byte(s))
}

// Identities returns the digests under which the vault finds earlier
// versions of r: for its business identifiers that name their system
// (all of them together: a single identifier is often shared by many
// resources, like the claim group every Synthea ExplanationOfBenefit
// carries), and for the resource's id in its source system when the
// source system is known, each combined with each code of what the record
// is about (see thingTokens). They are nil for self-entered records.
// Records that share an identity are the same thing as their source sees
// it: a later one from another file is a new version of the earlier one,
// and two from one file are both kept. The source and resource type take
// part, so identities of different sources or types never meet.
func Identities(r *Record) [][]byte {
	if r.fp != nil && r.fpFor == r.Provenance {
		return r.fpIDs
	}
	return identities(r, nil)
}

// identities computes Identities; res is the parsed resource, or nil to
// parse it.
func identities(r *Record, res Resource) [][]byte {
	if r.Provenance.Method == MethodSelf || r.Provenance.Method == "" || len(r.Resource) == 0 {
		return nil
	}
	src := r.Provenance.Source()
	var out [][]byte
	if res == nil {
		var err error
		if res, err = Parse(r.Resource); err != nil {
			return nil
		}
	}
	if r.Provenance.OriginalID != "" && r.Provenance.System != "" {
		out = append(out, join("identity-id", src, res.Type(), r.Provenance.OriginalID))
	}
	ids := identifierKeys(res, true)
	if len(ids) > 0 {
		slices.Sort(ids)
		out = append(out, join("identity", src, res.Type(), strings.Join(slices.Compact(ids), "\x1f")))
	}
	if len(out) == 0 {
		return nil
	}
	// An identity holds only for what the record is about: one per code
	// of its main concept (records that share one code name the same
	// thing, whatever codes each adds), or its name when it has no code.
	// A source that reuses an id for another thing (template-made
	// documents do) sends another record, and the vault never reads the
	// records of other things to find that out.
	tokens := thingTokens(res)
	ids2 := make([][]byte, 0, len(out)*len(tokens))
	for _, base := range out {
		for _, t := range tokens {
			ids2 = append(ids2, join("identity-thing", string(base), t))
		}
	}
	return ids2
}

// thingTokens are what a resource is about, for Identities: the codes of
// its main concept ("system|code", with C-CDA's OIDs read as FHIR's
// URIs), or, without codes, the folded name of that concept.
func thingTokens(res Resource) []string {
	var out []string
	for _, c := range conceptCodes(res) {
		out = append(out, "code:"+c)
	}
	if len(out) == 0 {
		out = append(out, "name:"+foldDisplay(res.ConceptText(conceptPath(res))))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// conceptPath is the path of the concept res is about (mainConcept, else
// "code").
func conceptPath(res Resource) string {
	if path := mainConcept[res.Type()]; path != "" {
		return path
	}
	return "code"
}

// conceptCodes are the codes of the concept res is about, "system|code",
// with C-CDA's OIDs read as FHIR's URIs.
func conceptCodes(res Resource) []string {
	var out []string
	for _, c := range res.Codings(conceptPath(res)) {
		if c.Code == "" {
			continue
		}
		sys := c.System
		if alias, ok := codeSystemAliases[sys]; ok {
			sys = alias
		}
		out = append(out, sys+"|"+c.Code)
	}
	return out
}

// identifierKeys are res's business identifiers, "system|value": those
// with a value, and a system too when needSystem.
func identifierKeys(res Resource, needSystem bool) []string {
	var ids []string
	for _, v := range res.List("identifier") {
		m, ok := v.(map[string]any)
		if !ok {
			continue
		}
		sys, _ := m["system"].(string)
		val, _ := m["value"].(string)
		if val != "" && (sys != "" || !needSystem) {
			ids = append(ids, sys+"|"+val)
		}
	}
	return ids
}

// LegacyFingerprint returns the fingerprint input and cluster that
// vaults before format 3 stored for r: by source id or business
// identifiers when the record had them, else by content. The vault looks
// these up only to keep records the patient deleted before the upgrade
// from coming back when their file is imported again.
func LegacyFingerprint(r *Record) (input, cluster []byte) {
	if r.Provenance.Method == MethodSelf || r.Provenance.Method == "" {
		return nil, nil
	}
	src := r.Provenance.Source()
	if r.Provenance.OriginalID != "" && r.Provenance.System != "" {
		return join("src", src, r.ResourceType, r.Provenance.OriginalID), nil
	}
	res, err := Parse(r.Resource)
	if err != nil {
		return join("raw", src, string(r.Resource)), nil
	}
	ids := identifierKeys(res, false)
	if len(ids) > 0 {
		slices.Sort(ids)
		return join("ident", src, res.Type(), strings.Join(ids, "\x1f")), nil
	}
	content := make(map[string]any, len(res))
	for k, v := range res {
		if k != "id" && k != "meta" {
			content[k] = v
		}
	}
	canon, err := json.Marshal(content)
	if err != nil {
		return join("raw", src, string(r.Resource)), nil
	}
	day := ""
	if d := DateOf(res); !d.IsZero() {
		day = d.UTC().Format(time.DateOnly)
	}
	return join("content", src, string(canon)), join("cluster", src, res.Type(), day)
}

func join(parts ...string) []byte {
	h := sha256.New()
	for i, p := range parts {
		if i > 0 {
			h.Write([]byte{0})
		}
		h.Write([]byte(p))
	}
	return h.Sum(nil)
}
