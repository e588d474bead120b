package share

import (
	"bytes"
	"errors"
	"image/png"
	"strings"
	"testing"
	"unicode/utf8"
)

func testLink(t *testing.T) string {
	t.Helper()
	s, err := ViewerLink("https://phr.example.org/view", validPayload())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestQRPNG(t *testing.T) {
	link := testLink(t)
	bm, err := qrBitmap(link)
	if err != nil {
		t.Fatal(err)
	}
	n := len(bm)
	for _, size := range []int{n, 256, 300, 512} {
		b, err := QRPNG(link, size)
		if err != nil {
			t.Fatalf("QRPNG(%d): %v", size, err)
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("QRPNG(%d) is not a PNG: %v", size, err)
		}
		if r := img.Bounds(); r.Dx() != size || r.Dy() != size {
			t.Fatalf("QRPNG(%d) is %dx%d", size, r.Dx(), r.Dy())
		}
		// Every module maps to a square of whole pixels matching the
		// bitmap: dark is black, light is white.
		scale := size / n
		off := (size - n*scale) / 2
		for y := 0; y < n; y++ {
			for x := 0; x < n; x++ {
				r, _, _, _ := img.At(off+x*scale+scale/2, off+y*scale+scale/2).RGBA()
				if dark := r == 0; dark != bm[y][x] {
					t.Fatalf("QRPNG(%d): module (%d,%d) dark=%v, want %v", size, x, y, dark, bm[y][x])
				}
			}
		}
		if r, _, _, _ := img.At(0, 0).RGBA(); r == 0 {
			t.Errorf("QRPNG(%d): corner is dark; want a light quiet zone", size)
		}
	}
	if _, err := QRPNG(link, n-1); !errors.Is(err, ErrQR) {
		t.Errorf("too small: %v", err)
	}
	if _, err := QRPNG(link, MaxQRSize+1); !errors.Is(err, ErrQR) {
		t.Errorf("too large: %v", err)
	}
	if _, err := QRPNG(strings.Repeat("x", 5000), 512); !errors.Is(err, ErrQR) {
		t.Errorf("text too long: %v", err)
	}
}

func TestQRBitmapStructure(t *testing.T) {
	bm, err := qrBitmap(testLink(t))
	if err != nil {
		t.Fatal(err)
	}
	n := len(bm)
	const quiet = 4
	if (n-2*quiet-17)%4 != 0 {
		t.Fatalf("bitmap is %d modules: not a QR version plus quiet zone", n)
	}
	for i := 0; i < n; i++ {
		for q := 0; q < quiet; q++ {
			if bm[q][i] || bm[n-1-q][i] || bm[i][q] || bm[i][n-1-q] {
				t.Fatalf("quiet zone has a dark module near %d", i)
			}
		}
	}
	// Top-left finder pattern: a dark 7x7 ring with a dark 3x3 centre.
	for y := 0; y < 7; y++ {
		for x := 0; x < 7; x++ {
			ring := x == 0 || y == 0 || x == 6 || y == 6
			centre := x >= 2 && x <= 4 && y >= 2 && y <= 4
			if want := ring || centre; bm[quiet+y][quiet+x] != want {
				t.Fatalf("finder pattern module (%d,%d) = %v", x, y, !want)
			}
		}
	}
}

func TestQRTerminal(t *testing.T) {
	link := testLink(t)
	bm, _ := qrBitmap(link)
	s, err := QRTerminal(link)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(s, "\n") {
		t.Error("output does not end with a newline")
	}
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	if want := (len(bm) + 1) / 2; len(lines) != want {
		t.Fatalf("%d lines, want %d (two module rows per line)", len(lines), want)
	}
	// Read the modules back: each character holds the upper and lower row.
	for i, line := range lines {
		if utf8.RuneCountInString(line) != len(bm) {
			t.Fatalf("line %d has %d characters, want %d", i, utf8.RuneCountInString(line), len(bm))
		}
		x := 0
		for _, r := range line {
			var top, bottom bool
			switch r {
			case ' ':
			case '▀':
				top = true
			case '▄':
				bottom = true
			case '█':
				top, bottom = true, true
			default:
				t.Fatalf("unexpected character %q", r)
			}
			y := 2 * i
			if top != bm[y][x] {
				t.Fatalf("line %d col %d: upper module %v, want %v", i, x, top, bm[y][x])
			}
			wantBottom := y+1 < len(bm) && bm[y+1][x]
			if bottom != wantBottom {
				t.Fatalf("line %d col %d: lower module %v, want %v", i, x, bottom, wantBottom)
			}
			x++
		}
	}
	// Quiet zone: the first two lines (four module rows) are blank.
	for _, l := range lines[:2] {
		if strings.TrimSpace(l) != "" {
			t.Errorf("quiet-zone line %q is not blank", l)
		}
	}
	if _, err := QRTerminal(strings.Repeat("x", 5000)); !errors.Is(err, ErrQR) {
		t.Errorf("text too long: %v", err)
	}
}
