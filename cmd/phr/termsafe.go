package main

import (
	"io"
	"strconv"
	"unicode/utf8"
)

// termSafe writes what phr prints for people and scripts with every
// control character a terminal would act on written out as \u escapes:
// C0 controls other than tab and newline (ESC starts the sequences that
// clear a screen, retitle a window or write the clipboard), DEL, the C1
// controls (U+0080-U+009F; U+009B is a one-byte CSI), and the bidirectional
// overrides that reorder what a line seems to say. Record text comes from
// files other people wrote, so nothing of it reaches the terminal raw. The
// escapes are valid inside JSON strings, so --json output stays JSON.
// Exports (phr export without -o) write through the raw stream instead:
// their bytes are the file.
type termSafe struct {
	w    io.Writer
	tail []byte // an incomplete UTF-8 sequence held for the next Write
}

func (t *termSafe) Write(p []byte) (int, error) {
	n := len(p)
	if len(t.tail) > 0 {
		p = append(t.tail, p...)
		t.tail = nil
	}
	var out []byte
	clean := 0 // p[clean:i] needs no change
	for i := 0; i < len(p); {
		c := p[i]
		if c < utf8.RuneSelf {
			if (c < 0x20 && c != '\n' && c != '\t') || c == 0x7f {
				out = append(out, p[clean:i]...)
				out = appendEscape(out, rune(c))
				i++
				clean = i
				continue
			}
			i++
			continue
		}
		if !utf8.FullRune(p[i:]) {
			out = append(out, p[clean:i]...)
			t.tail = append([]byte(nil), p[i:]...)
			clean = len(p)
			break
		}
		r, size := utf8.DecodeRune(p[i:])
		if unsafeRune(r) {
			out = append(out, p[clean:i]...)
			out = appendEscape(out, r)
			i += size
			clean = i
			continue
		}
		i += size
	}
	if out == nil && clean == 0 && len(t.tail) == 0 {
		_, err := t.w.Write(p)
		return n, err
	}
	out = append(out, p[clean:]...)
	_, err := t.w.Write(out)
	return n, err
}

// unsafeRune reports whether r is a C1 control or a bidirectional
// override or isolate.
func unsafeRune(r rune) bool {
	return (r >= 0x80 && r <= 0x9f) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069)
}

func appendEscape(out []byte, r rune) []byte {
	s := strconv.FormatInt(int64(r), 16)
	out = append(out, `\u`...)
	for range 4 - len(s) {
		out = append(out, '0')
	}
	return append(out, s...)
}
