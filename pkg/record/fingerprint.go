package record

import (
	"crypto/sha256"
	"encoding/json"
	"maps"
	"slices"
	"strings"
)

// FingerprintInput returns the bytes that identify r for deduplication, or
// nil if r must never be merged with another record (self-entered data: a
// patient may log the same dose twice).
//
// In order of preference it uses the source system and the resource's id
// there, the resource's business identifiers, or its normalized content
// (without id and meta). The source always takes part, so that the same
// medication from two providers stays two records. The vault keys the
// result with HMAC before it stores anything.
//
// The result is a SHA-256 digest of those facts (32 bytes).
func FingerprintInput(r *Record) []byte {
	if r.fp != nil && r.fpFor == r.Provenance {
		return r.fp
	}
	return fingerprintInput(r, nil)
}

// fingerprintInput computes FingerprintInput; res is the parsed resource,
// or nil to parse it.
func fingerprintInput(r *Record, res Resource) []byte {
	if r.Provenance.Method == MethodSelf || r.Provenance.Method == "" {
		return nil
	}
	src := r.Provenance.Source()
	if r.Provenance.OriginalID != "" && r.Provenance.System != "" {
		return join("src", src, r.ResourceType, r.Provenance.OriginalID)
	}
	if res == nil {
		var err error
		if res, err = Parse(r.Resource); err != nil {
			return join("raw", src, string(r.Resource))
		}
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
		return join("ident", src, res.Type(), strings.Join(ids, "\x1f"))
	}
	res = maps.Clone(res) // shallow: only the top level changes
	delete(res, "id")
	delete(res, "meta")
	canon, err := json.Marshal(map[string]any(res)) // map keys sort: canonical enough
	if err != nil {
		return join("raw", src, string(r.Resource))
	}
	return join("content", src, string(canon))
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
