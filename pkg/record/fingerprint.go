package record

import (
	"crypto/sha256"
	"encoding/json"
	"slices"
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
	content := make(map[string]any, len(res))
	for k, v := range res {
		switch k {
		case "id", "meta", "text":
			continue
		}
		content[k] = withoutReferences(v)
	}
	canon, err := json.Marshal(content) // map keys sort: canonical enough
	if err != nil {
		return join("raw", src, string(r.Resource)), nil
	}
	// The same content has the same type and date (DateOf reads neither
	// id, meta, text nor references), so equal inputs always have equal
	// clusters.
	day := ""
	if d := DateOf(res); !d.IsZero() {
		day = d.UTC().Format(time.DateOnly)
	}
	return join("content", src, string(canon)), join("cluster", src, res.Type(), day)
}

// withoutReferences returns v with the "reference" member of every object
// left out (a Reference's target; its display stays). It copies only the
// objects and arrays on the way to a reference and shares the rest.
func withoutReferences(v any) any {
	switch x := v.(type) {
	case map[string]any:
		if !hasReference(x) {
			return x
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			if k == "reference" {
				if _, ok := e.(string); ok {
					continue
				}
			}
			out[k] = withoutReferences(e)
		}
		return out
	case []any:
		if !hasReference(x) {
			return x
		}
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = withoutReferences(e)
		}
		return out
	}
	return v
}

// hasReference reports whether v holds an object with a string
// "reference" member, at any depth.
func hasReference(v any) bool {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if _, ok := e.(string); ok && k == "reference" {
				return true
			}
			if hasReference(e) {
				return true
			}
		}
	case []any:
		for _, e := range x {
			if hasReference(e) {
				return true
			}
		}
	}
	return false
}

// Identities returns the digests under which the vault finds earlier
// versions of r: one for its business identifiers that name their system
// (all of them together: a single identifier is often shared by many
// resources, like the claim group every Synthea ExplanationOfBenefit
// carries), and one for the resource's id in its source system when the
// source system is known. They are nil for self-entered records.
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
	var ids []string
	for _, v := range res.List("identifier") {
		m, ok := v.(map[string]any)
		if !ok {
			continue
		}
		sys, _ := m["system"].(string)
		val, _ := m["value"].(string)
		if sys != "" && val != "" {
			ids = append(ids, sys+"|"+val)
		}
	}
	if len(ids) > 0 {
		slices.Sort(ids)
		out = append(out, join("identity", src, res.Type(), strings.Join(slices.Compact(ids), "\x1f")))
	}
	return out
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
	var ids []string
	for _, v := range res.List("identifier") {
		m, ok := v.(map[string]any)
		if !ok {
			continue
		}
		sys, _ := m["system"].(string)
		val, _ := m["value"].(string)
		if val != "" {
			ids = append(ids, sys+"|"+val)
		}
	}
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
