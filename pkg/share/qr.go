package share

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"strings"

	qrcode "github.com/skip2/go-qrcode"
)

// MaxQRSize is the largest PNG width and height QRPNG makes, in pixels.
const MaxQRSize = 4096

// qrBitmap encodes text with error correction level M (as the
// specification recommends for links) and returns its modules, quiet zone
// included; true is a dark module.
func qrBitmap(text string) ([][]bool, error) {
	q, err := qrcode.New(text, qrcode.Medium)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrQR, err)
	}
	return q.Bitmap(), nil
}

// QRPNG returns a PNG image, size by size pixels, of a QR code of text with
// error correction level M, dark modules black on white, quiet zone
// included. Every module is the same whole number of pixels, for crisp
// scanning, and the code is centred with extra white margin. size must be
// between the module count (at most 185) and MaxQRSize; otherwise the
// error wraps ErrQR.
func QRPNG(text string, size int) ([]byte, error) {
	bm, err := qrBitmap(text)
	if err != nil {
		return nil, err
	}
	n := len(bm)
	if size < n || size > MaxQRSize {
		return nil, fmt.Errorf("%w: size must be between %d and %d pixels (got %d)", ErrQR, n, MaxQRSize, size)
	}
	scale := size / n
	off := (size - n*scale) / 2
	img := image.NewPaletted(image.Rect(0, 0, size, size), color.Palette{color.White, color.Black})
	for y, row := range bm {
		for x, dark := range row {
			if !dark {
				continue
			}
			for dy := 0; dy < scale; dy++ {
				line := img.Pix[(off+y*scale+dy)*img.Stride:]
				for dx := 0; dx < scale; dx++ {
					line[off+x*scale+dx] = 1
				}
			}
		}
	}
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrQR, err)
	}
	return buf.Bytes(), nil
}

// QRTerminal renders a QR code of text (error correction level M, quiet
// zone included) as lines of Unicode half blocks, two module rows per line,
// each line ending in "\n".
//
// Dark modules are drawn with block characters and light modules are
// spaces, so the code reads correctly on a terminal with dark text on a
// light background. On a light-on-dark terminal it appears inverted (light
// modules on dark), which many but not all scanners accept; for those,
// print it on a light background or use QRPNG. The error wraps ErrQR.
func QRTerminal(text string) (string, error) {
	bm, err := qrBitmap(text)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for y := 0; y < len(bm); y += 2 {
		top := bm[y]
		var bottom []bool
		if y+1 < len(bm) {
			bottom = bm[y+1]
		}
		for x := range top {
			lower := bottom != nil && bottom[x]
			switch {
			case top[x] && lower:
				b.WriteRune('█')
			case top[x]:
				b.WriteRune('▀')
			case lower:
				b.WriteRune('▄')
			default:
				b.WriteByte(' ')
			}
		}
		b.WriteByte('\n')
	}
	return b.String(), nil
}
