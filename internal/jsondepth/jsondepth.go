// Package jsondepth measures how deeply JSON nests, without decoding it,
// so that parsers of outside input can refuse a document before handing it
// to a recursive decoder.
package jsondepth

// Exceeds reports whether the JSON in b nests objects and arrays more than
// max levels deep. It does not validate b; brackets inside strings do not
// count. It walks b once, without recursion.
func Exceeds(b []byte, max int) bool {
	depth := 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			for i++; i < len(b) && b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
		case '{', '[':
			depth++
			if depth > max {
				return true
			}
		case '}', ']':
			depth--
		}
	}
	return false
}
