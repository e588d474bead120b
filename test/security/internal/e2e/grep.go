package e2e

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"unicode/utf16"
)

// A Form is one way a plaintext string could sit in a file.
type Form struct {
	// Name says which: raw, hex, utf16le, base64, base64url (with the
	// alignment for base64: +0, +1, +2).
	Name string
	// Needle is the bytes to look for.
	Needle []byte
	// Fold: the needle is lower case and matches regardless of case.
	Fold bool
}

// Forms returns the forms of s a leak could take: the bytes themselves
// (any case), lower- or upper-case hex, UTF-16LE, and standard and URL
// base64 at each of the three byte alignments a substring can have inside
// a longer encoded text. For alignment k the needle is the run of base64
// characters that depend on s's bytes only (the first and last characters
// also encode neighbouring bytes, so they are left out).
func Forms(s string) []Form {
	b := []byte(s)
	forms := []Form{
		{Name: "raw", Needle: bytes.ToLower(b), Fold: true},
		{Name: "hex", Needle: []byte(hex.EncodeToString(b)), Fold: true},
	}
	u := utf16.Encode([]rune(s))
	le := make([]byte, 0, 2*len(u))
	for _, c := range u {
		le = append(le, byte(c), byte(c>>8))
	}
	forms = append(forms, Form{Name: "utf16le", Needle: le})
	seen := map[string]bool{}
	for _, enc := range []struct {
		name string
		e    *base64.Encoding
	}{{"base64", base64.RawStdEncoding}, {"base64url", base64.RawURLEncoding}} {
		for k := range 3 {
			buf := append(make([]byte, k), b...)
			full := enc.e.EncodeToString(buf)
			from := (8*k + 5) / 6      // first character with no pad bit
			to := 8 * (k + len(b)) / 6 // characters wholly inside s
			if to-from < 4 {
				continue // too short to mean anything
			}
			n := full[from:to]
			if seen[n] {
				continue
			}
			seen[n] = true
			forms = append(forms, Form{Name: fmt.Sprintf("%s+%d", enc.name, k), Needle: []byte(n)})
		}
	}
	return forms
}

// Haystack is data to search, kept in the two shapes the forms need.
type Haystack struct {
	Name         string
	data, folded []byte
}

// NewHaystack prepares data for searching.
func NewHaystack(name string, data []byte) *Haystack {
	return &Haystack{Name: name, data: data, folded: bytes.ToLower(data)}
}

// Len is the number of bytes searched.
func (h *Haystack) Len() int { return len(h.data) }

// Find returns the first form of s found in h and its offset.
func (h *Haystack) Find(forms []Form) (Form, int, bool) {
	for _, f := range forms {
		d := h.data
		if f.Fold {
			d = h.folded
		}
		if i := bytes.Index(d, f.Needle); i >= 0 {
			return f, i, true
		}
	}
	return Form{}, 0, false
}

// Contains reports whether any form of s is in h.
func (h *Haystack) Contains(s string) bool {
	_, _, ok := h.Find(Forms(s))
	return ok
}

// Expand returns the haystacks of a file's bytes: the bytes themselves
// and, for a gzip stream or a zip archive, what they decompress to (a
// plaintext file that was merely compressed must not hide from the grep).
func Expand(name string, data []byte) ([]*Haystack, error) {
	out := []*Haystack{NewHaystack(name, data)}
	switch {
	case bytes.HasPrefix(data, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return out, nil // not gzip after all
		}
		plain, err := io.ReadAll(io.LimitReader(zr, 1<<30))
		if err != nil {
			return out, nil
		}
		out = append(out, NewHaystack(name+" (gunzipped)", plain))
	case bytes.HasPrefix(data, []byte("PK\x03\x04")):
		zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return out, nil
		}
		for _, f := range zr.File {
			rc, err := f.Open()
			if err != nil {
				return nil, fmt.Errorf("%s: %s: %w", name, f.Name, err)
			}
			plain, err := io.ReadAll(io.LimitReader(rc, 1<<30))
			rc.Close()
			if err != nil {
				return nil, fmt.Errorf("%s: %s: %w", name, f.Name, err)
			}
			out = append(out, NewHaystack(name+" ("+f.Name+")", plain))
		}
	}
	return out, nil
}

// Files lists the regular files under root, recursively. Anything else
// but directories (a symlink, a socket) is an error: the grep must not
// miss data behind a link.
func Files(root string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
		case d.Type().IsRegular():
			out = append(out, path)
		default:
			return fmt.Errorf("%s: not a regular file (%v)", path, d.Type())
		}
		return nil
	})
	return out, err
}
