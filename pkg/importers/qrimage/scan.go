package qrimage

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // JPEG photos
	_ "image/png"  // PNG screenshots and renderings
	"io"
	"sort"

	"github.com/makiuchi-d/gozxing"
	multiqr "github.com/makiuchi-d/gozxing/multi/qrcode"
	"github.com/phr-project/phr/pkg/importers"
)

// Limits on images (docs/formats/shl.md).
const (
	// MaxImageSize is the largest image file read: 32 MiB. A 48
	// megapixel phone photo is about 15 MiB.
	MaxImageSize = 32 << 20
	// MaxPixels is the most pixels an image may declare: 50 million (a
	// 48 megapixel photo). The size is read from the header before the
	// image is decoded, so a small file declaring a huge image costs
	// nothing.
	MaxPixels = 50_000_000
	// MaxCodes is the most QR codes read from one image: 99, the chunks
	// of the largest split SMART Health Card.
	MaxCodes = 99
	// scanSide is the longest side the decoder works on: larger images
	// are scaled down (box filter) first. A QR code that fills a tenth
	// of a 4000-pixel photo keeps 2 pixels a module or more for the
	// densest codes that SMART Health Cards use.
	scanSide = 4000
)

// Errors. Scan's errors wrap one of them.
var (
	// ErrNotImage means the input is not a PNG or JPEG image, or is a
	// damaged one.
	ErrNotImage = errors.New("not a PNG or JPEG image")
	// ErrTooLarge means the file or its declared size is over a limit.
	ErrTooLarge = errors.New("image too large")
	// ErrNoCode means no QR code could be read in the image. It wraps
	// importers.ErrUnknownFormat: as far as phr can tell, the image is
	// not a health record.
	ErrNoCode = fmt.Errorf("%w: no QR code found in the image", importers.ErrUnknownFormat)
)

// Detect reports whether head starts a PNG or JPEG file.
func Detect(head []byte) bool {
	return bytes.HasPrefix(head, []byte("\x89PNG\r\n\x1a\n")) || bytes.HasPrefix(head, []byte{0xff, 0xd8, 0xff})
}

// Scan decodes the image in r (PNG or JPEG) and returns the text of every
// QR code it finds, top to bottom, then left to right. Codes drawn light
// on dark (a terminal's QR code on a dark background) are read too. It
// reads at most MaxImageSize bytes and refuses images over MaxPixels
// before decoding them; it never panics.
func Scan(r io.Reader) ([]string, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxImageSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxImageSize {
		return nil, fmt.Errorf("%w: the file is over %d MiB", ErrTooLarge, MaxImageSize>>20)
	}
	if !Detect(data) {
		return nil, ErrNotImage
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotImage, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > MaxPixels {
		return nil, fmt.Errorf("%w: %dx%d pixels (at most %d million)", ErrTooLarge, cfg.Width, cfg.Height, MaxPixels/1_000_000)
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotImage, err)
	}
	return scanImage(img)
}

// scanImage finds the QR codes of img.
func scanImage(img image.Image) (texts []string, err error) {
	lum, w, h := luminance(img)
	src, err := gozxing.NewPlanarYUVLuminanceSource(lum, w, h, 0, 0, w, h, false)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotImage, err)
	}
	for _, s := range []gozxing.LuminanceSource{src, gozxing.NewInvertedLuminanceSource(src)} {
		found, err := decode(s)
		if err != nil {
			return nil, err
		}
		if len(found) > 0 {
			return found, nil
		}
	}
	return nil, ErrNoCode
}

// decode runs the multiple-code reader. The reader is a port of ZXing:
// whatever it does on hostile input, a panic becomes ErrNoCode.
func decode(src gozxing.LuminanceSource) (texts []string, err error) {
	defer func() {
		if recover() != nil {
			texts, err = nil, ErrNoCode
		}
	}()
	bmp, err := gozxing.NewBinaryBitmap(gozxing.NewHybridBinarizer(src))
	if err != nil {
		return nil, nil
	}
	hints := map[gozxing.DecodeHintType]interface{}{gozxing.DecodeHintType_TRY_HARDER: true}
	results, err := multiqr.NewQRCodeMultiReader().DecodeMultiple(bmp, hints)
	if err != nil || len(results) == 0 {
		return nil, nil // nothing found: not an error of the file
	}
	type found struct {
		text string
		x, y float64
	}
	var list []found
	seen := map[string]bool{}
	for _, r := range results {
		t := r.GetText()
		if t == "" || seen[t] {
			continue
		}
		seen[t] = true
		f := found{text: t}
		if pts := r.GetResultPoints(); len(pts) > 0 {
			for _, p := range pts {
				f.x += p.GetX() / float64(len(pts))
				f.y += p.GetY() / float64(len(pts))
			}
		}
		list = append(list, f)
	}
	if len(list) > MaxCodes {
		return nil, fmt.Errorf("%w: more than %d QR codes", ErrTooLarge, MaxCodes)
	}
	// Reading order: rows (codes whose centres are within a code's
	// height of each other share a row), then left to right.
	sort.SliceStable(list, func(i, j int) bool {
		if d := list[i].y - list[j].y; d < -50 || d > 50 {
			return d < 0
		}
		return list[i].x < list[j].x
	})
	for _, f := range list {
		texts = append(texts, f.text)
	}
	return texts, nil
}

// luminance returns img's luminance, one byte a pixel, scaled down (by a
// whole factor, averaging) so that its longest side is at most scanSide.
func luminance(img image.Image) ([]byte, int, int) {
	b := img.Bounds()
	f := (max(b.Dx(), b.Dy()) + scanSide - 1) / scanSide
	w, h := b.Dx()/f, b.Dy()/f
	out := make([]byte, w*h)
	gray := func(x, y int) uint32 {
		switch m := img.(type) {
		case *image.YCbCr:
			return uint32(m.Y[m.YOffset(x, y)])
		case *image.Gray:
			return uint32(m.Pix[m.PixOffset(x, y)])
		}
		r, g, b, a := img.At(x, y).RGBA()
		if a < 0x8000 {
			return 255 // transparent: paper, not ink
		}
		// As color.GrayModel, on colours not premultiplied (a is >= 1/2).
		return (19595*(r*0xffff/a) + 38470*(g*0xffff/a) + 7471*(b*0xffff/a) + 1<<15) >> 24
	}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			var sum uint32
			for dy := 0; dy < f; dy++ {
				for dx := 0; dx < f; dx++ {
					sum += gray(b.Min.X+x*f+dx, b.Min.Y+y*f+dy)
				}
			}
			out[y*w+x] = byte(sum / uint32(f*f))
		}
	}
	return out, w, h
}
