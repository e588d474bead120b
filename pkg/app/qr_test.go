package app

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/phr-project/phr/pkg/importers/qrimage"
)

// qrCase is one code for the JavaScript encoder to make.
type qrCase struct {
	Text       string `json:"text"`
	MinVersion int    `json:"minVersion,omitempty"`
	Mask       *int   `json:"mask,omitempty"`
}

type qrCode struct {
	Version int      `json:"version"`
	Size    int      `json:"size"`
	Mask    int      `json:"mask"`
	Rows    []string `json:"rows"`
}

// renderQR draws a code black on white, scale pixels a module, with a
// quiet zone of four modules.
func renderQR(t *testing.T, q qrCode, scale int) []byte {
	t.Helper()
	side := (q.Size + 8) * scale
	img := image.NewGray(image.Rect(0, 0, side, side))
	for i := range img.Pix {
		img.Pix[i] = 0xff
	}
	for y, row := range q.Rows {
		for x, c := range row {
			if c != '1' {
				continue
			}
			for dy := range scale {
				for dx := range scale {
					img.SetGray((x+4)*scale+dx, (y+4)*scale+dy, color.Gray{})
				}
			}
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestQREncoderDecodes: the app draws share links as QR codes with its own
// encoder (assets/js/qr.mjs). Every code it makes must read back, with
// phr's QR reader (gozxing), as the text it was given: every version of
// level M at its full capacity (every row of the block table), every
// mask, UTF-8 text, and share links of the lengths phrd makes.
func TestQREncoderDecodes(t *testing.T) {
	node := nodePath(t)
	rng := rand.New(rand.NewPCG(16, 16))
	alphabet := "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_:/#."
	randText := func(n int) string {
		var b strings.Builder
		for range n {
			b.WriteByte(alphabet[rng.IntN(len(alphabet))])
		}
		return b.String()
	}
	// Capacity of level M in byte mode per version (ISO/IEC 18004 table 7).
	capM := []int{14, 26, 42, 62, 84, 106, 122, 152, 180, 213, 251, 287, 331, 362, 412, 450, 504, 560, 624, 666,
		711, 779, 857, 911, 997, 1059, 1125, 1190, 1264, 1370, 1452, 1538, 1628, 1722, 1809, 1911, 1989, 2099, 2213, 2331}
	var cases []qrCase
	var want []int // the version each case must get (0: any)
	for v, n := range capM {
		cases = append(cases, qrCase{Text: randText(n)})
		want = append(want, v+1)
	}
	for m := range 8 {
		cases = append(cases, qrCase{Text: "https://phr.example.org/view#shlink:/" + randText(200), Mask: &m})
		want = append(want, 0)
	}
	cases = append(cases,
		qrCase{Text: "Grüße, José — 血圧"},
		qrCase{Text: "x", MinVersion: 7}, // version information blocks
		qrCase{Text: "http://localhost:8080/view#shlink:/" + randText(260)},
	)
	want = append(want, 0, 7, 0)

	in, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, filepath.Join("jstest", "qrdump.mjs"))
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, stderr.String())
	}
	var codes []qrCode
	if err := json.Unmarshal(out, &codes); err != nil {
		t.Fatal(err)
	}
	if len(codes) != len(cases) {
		t.Fatalf("%d codes for %d texts", len(codes), len(cases))
	}
	for i, q := range codes {
		name := fmt.Sprintf("case %d (version %d, mask %d, %d bytes)", i, q.Version, q.Mask, len(cases[i].Text))
		if want[i] != 0 && q.Version != want[i] {
			t.Errorf("%s: version %d, want %d", name, q.Version, want[i])
		}
		if q.Size != 17+4*q.Version || len(q.Rows) != q.Size {
			t.Errorf("%s: size %d with %d rows", name, q.Size, len(q.Rows))
			continue
		}
		texts, err := qrimage.Scan(bytes.NewReader(renderQR(t, q, 3)))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if len(texts) != 1 || texts[0] != cases[i].Text {
			t.Errorf("%s: read %d codes, first %.40q, want %.40q", name, len(texts), texts, cases[i].Text)
		}
	}
}

// nodePath finds node. Without it the JavaScript tests skip, unless CI is
// set: then they fail, so CI cannot pass without them.
func nodePath(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		if ci() {
			t.Fatal("node is not installed, and CI is set: the app's JavaScript tests must run in CI (node 20 or later)")
		}
		t.Skip("node is not installed; skipping the app's JavaScript tests")
	}
	return node
}
