package applehealth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"testing"

	"github.com/phr-project/phr/pkg/importers"
	"github.com/phr-project/phr/pkg/record"
)

// memSink collects what an importer sends.
type memSink struct {
	records []record.Record
	skips   map[string]int // "resourceType: reason"
	fails   []*importers.ItemError
}

func (s *memSink) Record(r record.Record) error {
	s.records = append(s.records, r)
	return nil
}

func (s *memSink) Skip(resourceType, reason string) {
	if s.skips == nil {
		s.skips = map[string]int{}
	}
	s.skips[resourceType+": "+reason]++
}

func (s *memSink) Fail(err *importers.ItemError) { s.fails = append(s.fails, err) }

// byType counts records per resourceType.
func (s *memSink) byType() map[string]int {
	m := map[string]int{}
	for _, r := range s.records {
		m[r.ResourceType]++
	}
	return m
}

func input(name string, data []byte, opts map[string]string) *importers.Input {
	sum := sha256.Sum256(data)
	return &importers.Input{
		Name:     name,
		R:        bytes.NewReader(data),
		ReaderAt: bytes.NewReader(data),
		Size:     int64(len(data)),
		SHA256:   hex.EncodeToString(sum[:]),
		Options:  opts,
	}
}

func importBytes(t testing.TB, name string, data []byte, opts map[string]string) (*memSink, error) {
	t.Helper()
	s := &memSink{}
	err := New().Import(context.Background(), input(name, data, opts), s)
	return s, err
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
