package shc

import (
	"bytes"
	"encoding/json"
)

// detect: see Importer.Detect.
func detect(head []byte) bool {
	h := bytes.TrimLeft(bytes.TrimPrefix(head, []byte("\ufeff")), " \t\r\n")
	if len(h) == 0 {
		return false
	}
	if len(h) >= 5 && bytes.EqualFold(h[:5], []byte("shc:/")) {
		return true
	}
	if h[0] == '{' {
		keys := topKeys(h)
		return keys["verifiableCredential"] || keys["vc"] && keys["iss"]
	}
	// A compact JWS: base64url header, '.', ...
	dot := bytes.IndexByte(h, '.')
	if dot < 8 || dot > 4096 {
		return false
	}
	hb, err := b64.DecodeString(string(h[:dot]))
	if err != nil {
		return false
	}
	var hdr struct {
		Alg string `json:"alg"`
		Enc string `json:"enc"`
	}
	return json.Unmarshal(hb, &hdr) == nil && hdr.Alg != "" && hdr.Enc == ""
}

// topKeys returns the names of the top-level members of the JSON object b
// starts, as far as b goes.
func topKeys(b []byte) map[string]bool {
	keys := map[string]bool{}
	dec := json.NewDecoder(bytes.NewReader(b))
	depth := 0
	wantKey := false
	for {
		tok, err := dec.Token()
		if err != nil {
			return keys
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{', '[':
				depth++
				wantKey = t == '{' && depth == 1
			default:
				depth--
				if depth == 0 {
					return keys
				}
				wantKey = depth == 1
			}
		default:
			if depth != 1 {
				continue
			}
			if wantKey {
				if s, ok := t.(string); ok {
					keys[s] = true
				}
			}
			wantKey = !wantKey
		}
	}
}
