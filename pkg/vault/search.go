package vault

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
)

// resourceContains reports whether any string value in the resource JSON
// (not its keys, and not attachment data) contains lowerSub, compared in
// lower case.
func resourceContains(resource []byte, lowerSub string) bool {
	lower := bytes.ToLower(resource)
	if !bytes.Contains(lower, []byte(lowerSub)) && !bytes.Contains(lower, []byte(`"text/`)) {
		return false // fast path: not in the raw bytes, and no text attachment to decode
	}
	var v any
	if err := json.Unmarshal(resource, &v); err != nil {
		return false
	}
	return valueContains(v, lowerSub, "")
}

func valueContains(v any, lowerSub, key string) bool {
	switch v := v.(type) {
	case string:
		return key != "data" && strings.Contains(strings.ToLower(v), lowerSub)
	case map[string]any:
		if ct, _ := v["contentType"].(string); strings.HasPrefix(ct, "text/") {
			if d, _ := v["data"].(string); d != "" {
				if b, err := base64.StdEncoding.DecodeString(d); err == nil && strings.Contains(strings.ToLower(string(b)), lowerSub) {
					return true
				}
			}
		}
		for k, e := range v {
			if valueContains(e, lowerSub, k) {
				return true
			}
		}
	case []any:
		for _, e := range v {
			if valueContains(e, lowerSub, key) {
				return true
			}
		}
	}
	return false
}
