package qrimage_test

import (
	"bytes"
	"errors"
	"image"
	"image/jpeg"
	"testing"

	"github.com/phr-project/phr/pkg/importers/qrimage"
	"github.com/phr-project/phr/pkg/share"
)

// FuzzScan checks that Scan never panics on any bytes (the decoder is a
// port of ZXing, and image/png and image/jpeg read the file), and that
// every error is one of the package's.
func FuzzScan(f *testing.F) {
	small, _ := share.QRPNG("shc:/5676290952432060346029243740446031222959532654603460292540772804336028702864716745222809286133314564376531415906402203064504590856435503414245413640370636654171372412363803043756220467374075323239254334433260573601064529047534404508", 180)
	f.Add(small)
	link, _ := share.QRPNG("shlink:/eyJ1cmwiOiJodHRwczovL2EuZXhhbXBsZS9tIiwia2V5IjoicnhUZ1lsT2FLSlBGdGNFZDBxY2NlTjh3RVU0cDk0U3FBd0lXUWU2dVg3USJ9", 120)
	f.Add(link)
	img := image.NewGray(image.Rect(0, 0, 16, 16))
	var j bytes.Buffer
	jpeg.Encode(&j, img, nil)
	f.Add(j.Bytes())
	f.Add(hugePNG(9000, 9000))
	f.Add([]byte{0xff, 0xd8, 0xff, 0xe0})
	f.Fuzz(func(t *testing.T, data []byte) {
		texts, err := qrimage.Scan(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, qrimage.ErrNotImage) && !errors.Is(err, qrimage.ErrTooLarge) && !errors.Is(err, qrimage.ErrNoCode) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if len(texts) == 0 || len(texts) > qrimage.MaxCodes {
			t.Fatalf("%d codes without an error", len(texts))
		}
	})
}
