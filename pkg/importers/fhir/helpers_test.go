package fhir

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/phr-project/phr/pkg/importers"
	"github.com/phr-project/phr/pkg/record"
)

const testdata = "../../../../shared/testdata"

type skipped struct{ typ, reason string }

// memSink collects what an importer finds.
type memSink struct {
	recs  []record.Record
	skips []skipped
	fails []*importers.ItemError
}

func (s *memSink) Record(r record.Record) error  { s.recs = append(s.recs, r); return nil }
func (s *memSink) Skip(t, reason string)         { s.skips = append(s.skips, skipped{t, reason}) }
func (s *memSink) Fail(err *importers.ItemError) { s.fails = append(s.fails, err) }

func (s *memSink) counts() map[string]int {
	m := map[string]int{}
	for _, r := range s.recs {
		m[r.ResourceType]++
	}
	return m
}

// input makes an Input over data, named name.
func input(name string, data []byte) *importers.Input {
	sum := sha256.Sum256(data)
	return &importers.Input{
		Name: name, R: bytes.NewReader(data), ReaderAt: bytes.NewReader(data),
		Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:]),
	}
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// run imports data with imp and returns what the sink saw and the error.
func run(imp importers.Importer, name string, data []byte) (*memSink, error) {
	s := &memSink{}
	err := imp.Import(context.Background(), input(name, data), s)
	return s, err
}

func mustRun(t *testing.T, imp importers.Importer, path string) *memSink {
	t.Helper()
	s, err := run(imp, path, readFile(t, path))
	if err != nil {
		t.Fatalf("%s: %v", filepath.Base(path), err)
	}
	return s
}

func fingerprints(s *memSink) []string {
	out := make([]string, len(s.recs))
	for i := range s.recs {
		out[i] = string(record.FingerprintInput(&s.recs[i]))
	}
	return out
}

func head(b []byte) []byte {
	if len(b) > importers.DetectSize {
		return b[:importers.DetectSize]
	}
	return b
}
