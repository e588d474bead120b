package server

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phr-project/phr/pkg/importers"
)

// TestSpoolRoundTrip: what goes into a spool reads back the same, in
// order and at any offset, for sizes around the chunk size; the file on
// disk is the sealed chunks; a chunk changed, swapped or cut on disk does
// not read; Close removes the file.
func TestSpoolRoundTrip(t *testing.T) {
	for _, size := range []int{0, 1, spoolChunk - 1, spoolChunk, spoolChunk + 1, 3*spoolChunk + spoolChunk/2} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			dir := t.TempDir()
			sp, err := newSpool(dir)
			if err != nil {
				t.Fatal(err)
			}
			data := make([]byte, size)
			rand.Read(data)
			// Written in uneven pieces.
			for rest := data; len(rest) > 0; {
				n := min(len(rest), 1+len(rest)%7919)
				if _, err := sp.Write(rest[:n]); err != nil {
					t.Fatal(err)
				}
				rest = rest[n:]
			}
			if err := sp.finish(); err != nil {
				t.Fatal(err)
			}
			in := sp.input("x")
			sum := sha256.Sum256(data)
			if in.Size != int64(size) || in.SHA256 != hex.EncodeToString(sum[:]) {
				t.Fatalf("input %d %s", in.Size, in.SHA256)
			}
			got, err := io.ReadAll(in.R)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("read back: %v", err)
			}
			for _, off := range []int{0, size / 3, size - 1, spoolChunk - 2} {
				if off < 0 || off >= size {
					continue
				}
				p := make([]byte, min(100, size-off))
				if n, err := in.ReaderAt.ReadAt(p, int64(off)); n != len(p) || (err != nil && err != io.EOF) || !bytes.Equal(p, data[off:off+len(p)]) {
					t.Fatalf("ReadAt(%d): %d %v", off, n, err)
				}
			}
			raw, _ := os.ReadFile(sp.f.Name())
			chunks := (size + spoolChunk - 1) / spoolChunk
			if len(raw) != size+chunks*spoolTag {
				t.Fatalf("file of %d bytes for %d bytes in %d chunks", len(raw), size, chunks)
			}
			if size >= 2*spoolChunk {
				// Swap the first two chunks on disk.
				c := spoolChunk + spoolTag
				swapped := append(append(append([]byte(nil), raw[c:2*c]...), raw[:c]...), raw[2*c:]...)
				os.WriteFile(sp.f.Name(), swapped, 0o600)
				sp.cached = -1
				if _, err := sp.ReadAt(make([]byte, 10), 0); !errors.Is(err, errSpoolDamaged) {
					t.Fatalf("swapped chunks: %v", err)
				}
			}
			if size > 0 {
				flipped := append([]byte(nil), raw...)
				flipped[len(flipped)-1] ^= 1
				os.WriteFile(sp.f.Name(), flipped, 0o600)
				sp.cached = -1
				if _, err := sp.ReadAt(make([]byte, 1), int64(size-1)); !errors.Is(err, errSpoolDamaged) {
					t.Fatalf("flipped byte: %v", err)
				}
				os.WriteFile(sp.f.Name(), raw[:len(raw)-1], 0o600)
				sp.cached = -1
				if _, err := sp.ReadAt(make([]byte, 1), int64(size-1)); !errors.Is(err, errSpoolDamaged) {
					t.Fatalf("cut file: %v", err)
				}
			}
			if err := sp.Close(); err != nil {
				t.Fatal(err)
			}
			if left, _ := os.ReadDir(dir); len(left) != 0 {
				t.Fatalf("left %v", left)
			}
		})
	}
}

// TestUploadSpoolSealed: while an upload is still arriving, the spool
// file in DATA/tmp holds none of the upload's strings (raw in any case,
// hex or base64), though it already holds more than a chunk of it; the
// upload then imports as usual and the spool is gone. (The uploaded file
// is a made-up one in the test importer's format: one "Type name" per
// line, padded to span chunks.)
func TestUploadSpoolSealed(t *testing.T) {
	ts := newTestServer(t, func(c *Config) {
		c.Importers = &importers.Registry{}
		c.Importers.Register(lines{})
	})
	c := ts.signup("alice")
	known := []string{"Quibbleflax", "Zorvantine", "Plimsoll-Grue"}
	var content strings.Builder
	content.WriteString("#lines\n")
	for i := 0; content.Len() < 3*spoolChunk; i++ {
		fmt.Fprintf(&content, "Condition %s-%d\n", known[i%len(known)], i)
	}
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	done := make(chan *http.Response, 1)
	go func() {
		req, _ := http.NewRequest("POST", ts.url+"/api/v1/imports", pr)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		req.Header.Set("Authorization", "Bearer "+c.token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			done <- nil
			return
		}
		done <- res
	}()
	fw, _ := mw.CreateFormFile("file", "conditions.txt")
	body := content.String()
	half := 2*spoolChunk + 100
	if _, err := io.WriteString(fw, body[:half]); err != nil {
		t.Fatal(err)
	}
	// The first two chunks reach the spool file while the rest is still
	// to come.
	var spooled []byte
	ok := waitFor(20*time.Second, func() bool {
		files, _ := filepath.Glob(filepath.Join(ts.cfg.DataDir, "tmp", "upload-*"))
		if len(files) != 1 {
			return false
		}
		spooled, _ = os.ReadFile(files[0])
		return len(spooled) >= 2*(spoolChunk+spoolTag)
	})
	if !ok {
		t.Fatalf("the upload did not reach the spool (%d bytes)", len(spooled))
	}
	lower := bytes.ToLower(spooled)
	for _, k := range known {
		for _, form := range []string{strings.ToLower(k), hex.EncodeToString([]byte(k)), base64.StdEncoding.EncodeToString([]byte(k))[:8]} {
			if bytes.Contains(lower, []byte(strings.ToLower(form))) {
				t.Errorf("the spool file holds %q as %q", k, form)
			}
		}
		if !strings.Contains(body[:half], k) {
			t.Fatalf("%q was not in what was sent: the check proves nothing", k)
		}
	}
	io.WriteString(fw, body[half:])
	mw.Close()
	pw.Close()
	res := <-done
	if res == nil {
		t.Fatal("no answer")
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("import: %d %s", res.StatusCode, b)
	}
	json := string(b)
	lineCount := strings.Count(body, "\n") - 1
	if !strings.Contains(json, fmt.Sprintf(`"added":%d`, lineCount)) {
		t.Fatalf("import of %d lines: %s", lineCount, json)
	}
	if files, _ := filepath.Glob(filepath.Join(ts.cfg.DataDir, "tmp", "upload-*")); len(files) != 0 {
		t.Fatalf("spool left: %v", files)
	}
}

func waitFor(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return false
}
