package fhir

import (
	"bytes"
	"encoding/json"

	"github.com/phr-project/phr/pkg/importers"
)

var bom = []byte{0xEF, 0xBB, 0xBF}

// trimHead drops a UTF-8 byte order mark and leading whitespace.
func trimHead(b []byte) []byte {
	b = bytes.TrimPrefix(b, bom)
	return bytes.TrimLeft(b, " \t\r\n")
}

// headInfo is what the first bytes of a JSON file say about it.
type headInfo struct {
	object bool     // the first value is an object
	done   bool     // and it ends within the bytes seen
	keys   []string // its members' names, as far as seen
	rt     string   // its resourceType, if a string and seen
}

func (h *headInfo) hasKey(k string) bool {
	for _, s := range h.keys {
		if s == k {
			return true
		}
	}
	return false
}

// sniff reads the tokens of b, which may be cut short, and notes the
// top-level object's members.
func sniff(b []byte) headInfo {
	var hi headInfo
	dec := json.NewDecoder(bytes.NewReader(b))
	type frame struct{ obj, wantKey bool }
	var stack []frame
	lastKey := ""
	for {
		tok, err := dec.Token()
		if err != nil {
			return hi
		}
		if len(stack) == 0 && hi.object {
			return hi // a second top-level value
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				if len(stack) == 0 {
					if d != '{' {
						return hi
					}
					hi.object = true
				} else if top := &stack[len(stack)-1]; top.obj {
					top.wantKey = true
				}
				stack = append(stack, frame{obj: d == '{', wantKey: d == '{'})
			default:
				stack = stack[:len(stack)-1]
				if len(stack) == 0 {
					hi.done = true
					return hi
				}
			}
			continue
		}
		if len(stack) == 0 {
			return hi // a scalar at the top
		}
		top := &stack[len(stack)-1]
		if top.obj && top.wantKey {
			k, _ := tok.(string)
			top.wantKey = false
			if len(stack) == 1 {
				hi.keys = append(hi.keys, k)
				lastKey = k
			}
			continue
		}
		if top.obj {
			top.wantKey = true
			if len(stack) == 1 && lastKey == "resourceType" {
				hi.rt, _ = tok.(string)
			}
		}
	}
}

// detectFHIR reports whether head starts a FHIR JSON resource that is not
// line-delimited (NDJSON) and not a SMART Health Card.
func detectFHIR(head []byte) bool {
	h := trimHead(head)
	if len(h) == 0 || h[0] != '{' {
		return false
	}
	hi := sniff(h)
	if !hi.object || hi.hasKey("verifiableCredential") || hi.hasKey("vc") || hi.hasKey("iss") {
		return false
	}
	if hi.rt == "" && isBareEntryHead(&hi) {
		return !detectNDJSON(head)
	}
	if hi.rt == "" {
		// resourceType need not come first: accept a file cut short
		// before its top-level resourceType if one appears at all.
		if hi.done || hi.hasKey("resourceType") || len(head) < importers.DetectSize ||
			!bytes.Contains(h, []byte(`"resourceType"`)) {
			return false
		}
	}
	return !detectNDJSON(head)
}

// isBareEntryHead reports whether the top-level object seen is one Bundle
// entry on its own: a "resource" and, as far as seen, only the other
// elements of an entry (no resourceType).
func isBareEntryHead(hi *headInfo) bool {
	if !hi.object || !hi.hasKey("resource") || hi.hasKey("resourceType") {
		return false
	}
	for _, k := range hi.keys {
		if !entryMembers[k] {
			return false
		}
	}
	return true
}

// detectNDJSON reports whether head starts line-delimited FHIR JSON: a
// first line that is a whole JSON object with a resourceType (or a bulk
// export log entry), followed by another line starting with "{" or by the
// end of the file. A file whose first line does not end within head is
// NDJSON when that line is a single minified non-Bundle resource.
func detectNDJSON(head []byte) bool {
	h := trimHead(head)
	if len(h) == 0 || h[0] != '{' {
		return false
	}
	nl := bytes.IndexByte(h, '\n')
	if nl < 0 {
		if len(head) < importers.DetectSize {
			return false // one resource, no newline: a FHIR JSON file
		}
		hi := sniff(h)
		return hi.object && !hi.done && len(hi.keys) > 0 && hi.keys[0] == "resourceType" &&
			hi.rt != "" && hi.rt != "Bundle"
	}
	line := bytes.TrimSpace(h[:nl])
	if !json.Valid(line) {
		return false
	}
	hi := sniff(line)
	if !hi.object || !hi.done {
		return false
	}
	if hi.rt == "" && !isLogEntry(&hi) {
		return false
	}
	rest := bytes.TrimLeft(h[nl+1:], " \t\r\n")
	return len(rest) == 0 || rest[0] == '{'
}

// isLogEntry reports whether a JSON object is a bulk data export log entry
// (log.ndjson: exportId, eventId, eventDetail).
func isLogEntry(hi *headInfo) bool {
	return hi.hasKey("eventId") && (hi.hasKey("exportId") || hi.hasKey("eventDetail"))
}
