package qrimage_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/phr-project/phr/internal/vaulttest"
	"github.com/phr-project/phr/pkg/importers"
	"github.com/phr-project/phr/pkg/importers/all"
	"github.com/phr-project/phr/pkg/importers/pipeline"
	"github.com/phr-project/phr/pkg/importers/qrimage"
	"github.com/phr-project/phr/pkg/importers/shc"
	"github.com/phr-project/phr/pkg/share"
	"github.com/phr-project/phr/pkg/vault"
)

const (
	testdata = "../../../../shared/testdata"
	images   = testdata + "/shc/input/images"
	jwksPath = testdata + "/shc/issuer/.well-known/jwks.json"
	specLink = "shlink:/eyJ1cmwiOiJodHRwczovL2Voci5leGFtcGxlLm9yZy9xci9ZOXh3a1VkdG1OOXd3b0pvTjNmZkpJaFgyVUd2Q0wxSm5sUFZOTDNrRFdNL20iLCJmbGFnIjoiTFAiLCJrZXkiOiJyeFRnWWxPYUtKUEZ0Y0VkMHFjY2VOOHdFVTRwOTRTcUF3SVdRZTZ1WDdRIiwibGFiZWwiOiJCYWNrLXRvLXNjaG9vbCBpbW11bml6YXRpb25zIGZvciBPbGl2ZXIgQnJvd24ifQ"
)

func qrText(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(images, name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// qrImage renders text as a QR code with go-qrcode (share.QRPNG).
func qrImage(t testing.TB, text string) image.Image {
	t.Helper()
	b, err := share.QRPNG(text, 600)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func encodePNG(t testing.TB, img image.Image) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// photo places img on a grey 2000x1500 "table", turned by deg degrees,
// with noise, as a JPEG of quality 75: what a phone's photo of a printed
// code looks like to a decoder.
func photo(t testing.TB, img image.Image, deg float64) []byte {
	const W, H = 2000, 1500
	ph := image.NewGray(image.Rect(0, 0, W, H))
	draw.Draw(ph, ph.Bounds(), &image.Uniform{color.Gray{150}}, image.Point{}, draw.Src)
	a := deg * math.Pi / 180
	b := img.Bounds()
	rnd := rand.New(rand.NewPCG(1, 2))
	for y := 0; y < H; y++ {
		for x := 0; x < W; x++ {
			dx, dy := float64(x)-W/2, float64(y)-H/2
			sx := dx*math.Cos(a) + dy*math.Sin(a) + float64(b.Dx())/2
			sy := -dx*math.Sin(a) + dy*math.Cos(a) + float64(b.Dy())/2
			v := 150
			if sx >= 0 && sy >= 0 && int(sx) < b.Dx() && int(sy) < b.Dy() {
				v = 225
				if r, _, _, _ := img.At(b.Min.X+int(sx), b.Min.Y+int(sy)).RGBA(); r < 0x8000 {
					v = 45
				}
			}
			v += rnd.IntN(41) - 20
			ph.SetGray(x, y, color.Gray{uint8(max(0, min(255, v)))})
		}
	}
	var out bytes.Buffer
	if err := jpeg.Encode(&out, ph, &jpeg.Options{Quality: 75}); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// sheet puts images side by side on white.
func sheet(imgs ...image.Image) image.Image {
	w, h := 0, 0
	for _, m := range imgs {
		w += m.Bounds().Dx() + 40
		h = max(h, m.Bounds().Dy())
	}
	out := image.NewGray(image.Rect(0, 0, w, h+80))
	draw.Draw(out, out.Bounds(), image.White, image.Point{}, draw.Src)
	x := 20
	for _, m := range imgs {
		draw.Draw(out, m.Bounds().Add(image.Pt(x, 40)), m, m.Bounds().Min, draw.Src)
		x += m.Bounds().Dx() + 40
	}
	return out
}

func invert(img image.Image) image.Image {
	b := img.Bounds()
	out := image.NewGray(b)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			g := color.GrayModel.Convert(img.At(x, y)).(color.Gray)
			out.SetGray(x, y, color.Gray{255 - g.Y})
		}
	}
	return out
}

// TestScan: codes made with go-qrcode read back, as PNGs, as photos,
// inverted, and several on one sheet.
func TestScan(t *testing.T) {
	card := qrText(t, "example-00-f-qr-code-numeric-value-0.txt")
	chunks := []string{
		qrText(t, "example-02-f-qr-code-numeric-value-0.txt"),
		qrText(t, "example-02-f-qr-code-numeric-value-1.txt"),
		qrText(t, "example-02-f-qr-code-numeric-value-2.txt"),
	}
	viewer := "https://viewer.example.org/view#" + specLink
	tests := []struct {
		name  string
		image func(t *testing.T) []byte
		want  []string
	}{
		{"card", func(t *testing.T) []byte { return encodePNG(t, qrImage(t, card)) }, []string{card}},
		{"link", func(t *testing.T) []byte { return encodePNG(t, qrImage(t, specLink)) }, []string{specLink}},
		{"viewer link", func(t *testing.T) []byte { return encodePNG(t, qrImage(t, viewer)) }, []string{viewer}},
		{"photo of a card", func(t *testing.T) []byte { return photo(t, qrImage(t, card), 8) }, []string{card}},
		{"photo of a link, upside down", func(t *testing.T) []byte { return photo(t, qrImage(t, specLink), 183) }, []string{specLink}},
		{"light on dark", func(t *testing.T) []byte { return encodePNG(t, invert(qrImage(t, card))) }, []string{card}},
		{"three chunks on a sheet", func(t *testing.T) []byte {
			return encodePNG(t, sheet(qrImage(t, chunks[0]), qrImage(t, chunks[1]), qrImage(t, chunks[2])))
		}, chunks},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := qrimage.Scan(bytes.NewReader(tt.image(t)))
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Fatalf("got %d codes %q..., want %d", len(got), got[0][:min(20, len(got[0]))], len(tt.want))
			}
		})
	}
}

// hugePNG is a valid PNG header declaring w x h pixels, and no pixels.
func hugePNG(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 0 // 8-bit greyscale
	binary.Write(&b, binary.BigEndian, uint32(len(ihdr)))
	chunk := append([]byte("IHDR"), ihdr...)
	b.Write(chunk)
	binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(chunk))
	return b.Bytes()
}

func TestScanRefusals(t *testing.T) {
	blank := image.NewGray(image.Rect(0, 0, 300, 300))
	draw.Draw(blank, blank.Bounds(), image.White, image.Point{}, draw.Src)
	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"not an image", []byte("shc:/56762909524320603460292437404460"), qrimage.ErrNotImage},
		{"damaged PNG", append([]byte("\x89PNG\r\n\x1a\n"), "garbage"...), qrimage.ErrNotImage},
		{"over MaxPixels", hugePNG(8000, 6251), qrimage.ErrTooLarge},
		{"at MaxPixels, truncated", hugePNG(8000, 6250), qrimage.ErrNotImage},
		{"over MaxImageSize", append(hugePNG(10, 10), make([]byte, qrimage.MaxImageSize)...), qrimage.ErrTooLarge},
		{"no code", encodePNG(t, blank), qrimage.ErrNoCode},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := qrimage.Scan(bytes.NewReader(tt.data))
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
	if !errors.Is(qrimage.ErrNoCode, importers.ErrUnknownFormat) {
		t.Error("an image without a code is not 'not a health record'")
	}
}

func input(name string, data []byte) *importers.Input {
	sum := sha256.Sum256(data)
	return &importers.Input{Name: name, R: bytes.NewReader(data), ReaderAt: bytes.NewReader(data), Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])}
}

var opts = pipeline.Options{AcceptPatientMismatch: true, Importer: map[string]string{shc.OptionIssuerKeys: jwksPath}}

// TestImportCardImage: a photo of a card imports like its shc:/ text,
// verified with the issuer's keys, with the image as its file.
func TestImportCardImage(t *testing.T) {
	v := vaulttest.New(t)
	data := photo(t, qrImage(t, qrText(t, "example-00-f-qr-code-numeric-value-0.txt")), -5)
	rep, err := pipeline.Import(context.Background(), all.Default(), v, input("dir/card.jpg", data), opts)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Format != "qr-image" || rep.Added != 4 {
		t.Fatalf("%+v", rep)
	}
	recs, _ := v.List(vault.Query{})
	for _, r := range recs {
		if p := r.Provenance; p.Importer == "shc" && (!p.Verified || p.File != "card.jpg" || p.FileSHA256 != rep.SHA256) {
			t.Errorf("provenance %+v", p)
		}
	}
}

// TestImportSplitCard: the chunks of a split card on one sheet import as
// the card; spread over three images they import once joined by Gather;
// one image of them alone is refused, saying what is missing.
func TestImportSplitCard(t *testing.T) {
	dir := t.TempDir()
	var imgs []image.Image
	var paths []string
	for i := range 3 {
		img := qrImage(t, qrText(t, "example-02-f-qr-code-numeric-value-"+string(rune('0'+i))+".txt"))
		imgs = append(imgs, img)
		p := filepath.Join(dir, "part"+string(rune('1'+i))+".png")
		if err := os.WriteFile(p, encodePNG(t, img), 0o600); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	other := filepath.Join(dir, "notes.txt")
	os.WriteFile(other, []byte("hello"), 0o600)

	v := vaulttest.New(t)
	rep, err := pipeline.Import(context.Background(), all.Default(), v, input("sheet.png", encodePNG(t, sheet(imgs...))), opts)
	if err != nil {
		t.Fatal(err)
	}
	n := rep.Added
	if n == 0 {
		t.Fatalf("%+v", rep)
	}

	rest, joined := qrimage.Gather(append(paths, other))
	if len(rest) != 1 || rest[0] != other || len(joined) != 1 || joined[0].Name != "part1.png + part2.png + part3.png" {
		t.Fatalf("rest %v, joined %d", rest, len(joined))
	}
	v2 := vaulttest.New(t)
	rep, err = pipeline.Import(context.Background(), all.Default(), v2, joined[0], opts)
	if err != nil || rep.Format != "shc" || rep.Added != n {
		t.Fatalf("joined: %v %+v", err, rep)
	}

	f, _ := os.ReadFile(paths[1])
	_, err = pipeline.Import(context.Background(), all.Default(), vaulttest.New(t), input("part2.png", f), opts)
	if !errors.Is(err, shc.ErrQRChunks) || !strings.Contains(err.Error(), "chunk 1, 3 of 3 missing") || !strings.Contains(err.Error(), "together") {
		t.Fatalf("one chunk: %v", err)
	}
	// One image alone is not joined with anything.
	if rest, joined := qrimage.Gather(paths[:1]); len(rest) != 1 || joined != nil {
		t.Fatal("Gather joined a single image")
	}
}

// TestImportLinkImage: an image of a link is not fetched here: the
// error carries the link and its message does not.
func TestImportLinkImage(t *testing.T) {
	_, err := pipeline.Import(context.Background(), all.Default(), vaulttest.New(t), input("link.png", encodePNG(t, qrImage(t, specLink))), opts)
	var le *qrimage.LinkError
	if !errors.As(err, &le) || len(le.Links) != 1 || le.Links[0] != specLink || !errors.Is(err, qrimage.ErrLink) {
		t.Fatalf("got %v", err)
	}
	if strings.Contains(err.Error(), "shlink:/") {
		t.Fatal("the error quotes the link")
	}
	// A code that is neither.
	_, err = pipeline.Import(context.Background(), all.Default(), vaulttest.New(t), input("url.png", encodePNG(t, qrImage(t, "https://example.org/"))), opts)
	if !errors.Is(err, qrimage.ErrNotHealthCode) {
		t.Fatalf("got %v", err)
	}
}
