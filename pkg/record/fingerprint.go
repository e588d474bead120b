package record

import (
	"crypto/sha256"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"time"
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
	in, _ := Fingerprint(r)
	return in
}

// Fingerprint returns FingerprintInput and the record's fingerprint
// cluster: a digest shared by records that are likely to be written
// together and whose fingerprints are the same only if their clusters
// are. The vault puts fingerprints of one cluster next to each other so
// that a batch of an import touches a few pages of its dedup index
// instead of one page per record. Records deduplicated by content (an
// Apple Health sample, a FHIR resource without ids) cluster by source,
// resource type and day of their date, all of which the content
// determines; the others have no cluster (nil).
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
	if r.Provenance.OriginalID != "" && r.Provenance.System != "" {
		return join("src", src, r.ResourceType, r.Provenance.OriginalID), nil
	}
	if res == nil {
		var err error
		if res, err = Parse(r.Resource); err != nil {
			return join("raw", src, string(r.Resource)), nil
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
		return join("ident", src, res.Type(), strings.Join(ids, "\x1f")), nil
	}
	res = maps.Clone(res) // shallow: only the top level changes
	delete(res, "id")
	delete(res, "meta")
	canon, err := json.Marshal(map[string]any(res)) // map keys sort: canonical enough
	if err != nil {
		return join("raw", src, string(r.Resource)), nil
	}
	// The same content has the same type and date (DateOf reads neither
	// id nor meta), so equal inputs always have equal clusters.
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
