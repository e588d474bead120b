package vault

import (
	"fmt"
	"os"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/klauspost/compress/dict"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/phr-project/phr/pkg/kv"
)

// BenchmarkEnvelopeCompression measures how envelopes compress, with and
// without dictionaries trained per record kind, on the records of a real
// vault: PHR_SCALE_VAULT names it and PHR_SCALE_IDENTITY its device
// identity (the vaults of scripts/scale-vaults.sh). Skipped without
// them. It reports bytes per record and the time to compress and
// decompress one, for each method:
//
//	PHR_SCALE_VAULT=... PHR_SCALE_IDENTITY=... go test -run '^$' -bench EnvelopeCompression -benchtime 1x ./pkg/vault
func BenchmarkEnvelopeCompression(b *testing.B) {
	path, idPath := os.Getenv("PHR_SCALE_VAULT"), os.Getenv("PHR_SCALE_IDENTITY")
	if path == "" || idPath == "" {
		b.Skip("PHR_SCALE_VAULT and PHR_SCALE_IDENTITY name a vault and its device identity")
	}
	f, err := os.Open(idPath)
	if err != nil {
		b.Fatal(err)
	}
	ids, err := age.ParseIdentities(f)
	f.Close()
	if err != nil {
		b.Fatal(err)
	}
	v, err := Open(path, Identities(ids...), &Options{ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	defer v.Close()
	// Every record's envelope, by kind, in the order of the file (at most
	// 200,000).
	byKind := map[string][][]byte{}
	var kinds []string
	total, n := 0, 0
	v.view(func(tx kv.Tx) error {
		rb := tx.Bucket([]byte{bucketRecords})
		return rb.ForEach(func(k, _ []byte) error {
			if n >= 200_000 {
				return nil
			}
			r, err := v.load(rb, k)
			if err != nil {
				return err
			}
			env := encodeRecord(&r)
			if byKind[r.Kind] == nil {
				kinds = append(kinds, r.Kind)
			}
			byKind[r.Kind] = append(byKind[r.Kind], env)
			total += len(env)
			n++
			return nil
		})
	})
	type method struct {
		name string
		// prepare returns compress and decompress functions for the
		// records of one kind.
		prepare func(samples [][]byte) (func(dst, src []byte) []byte, func(dst, src []byte) ([]byte, error))
	}
	zstdWith := func(level zstd.EncoderLevel, trained int, opts ...zstd.EOption) func([][]byte) (func(dst, src []byte) []byte, func(dst, src []byte) ([]byte, error)) {
		return func(samples [][]byte) (func(dst, src []byte) []byte, func(dst, src []byte) ([]byte, error)) {
			eo := append([]zstd.EOption{zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(false), zstd.WithSingleSegment(true)}, opts...)
			do := []zstd.DOption{zstd.WithDecoderConcurrency(1)}
			if trained > 0 && len(samples) >= dictMinSamples {
				d, err := dict.BuildZstdDict(samples[:min(trained, len(samples))], dict.Options{MaxDictSize: dictMaxSize, HashBytes: 6, ZstdDictID: 1, ZstdLevel: level})
				if err == nil {
					eo = append(eo, zstd.WithEncoderDict(d))
					do = append(do, zstd.WithDecoderDicts(d))
				}
			}
			enc, _ := zstd.NewWriter(nil, eo...)
			dec, _ := zstd.NewReader(nil, do...)
			return func(dst, src []byte) []byte { return enc.EncodeAll(src, dst) }, func(dst, src []byte) ([]byte, error) { return dec.DecodeAll(src, dst) }
		}
	}
	s2Dict := func(trained, size, level, hashBytes int) func([][]byte) (func(dst, src []byte) []byte, func(dst, src []byte) ([]byte, error)) {
		return func(samples [][]byte) (func(dst, src []byte) []byte, func(dst, src []byte) ([]byte, error)) {
			var d *s2.Dict
			if len(samples) >= dictMinSamples {
				raw, err := dict.BuildS2Dict(samples[:min(trained, len(samples))], dict.Options{MaxDictSize: size, HashBytes: hashBytes})
				if err == nil {
					d = s2.NewDict(raw)
				}
			}
			if d == nil {
				// A kind with too few records for a dictionary is
				// compressed without one, at the same level (as the
				// vault does).
				enc := [3]func(dst, src []byte) []byte{s2.Encode, s2.EncodeBetter, s2.EncodeBest}[level]
				return func(dst, src []byte) []byte { return append(dst, enc(nil, src)...) }, func(dst, src []byte) ([]byte, error) { return s2.Decode(dst, src) }
			}
			enc := [3]func(dst, src []byte) []byte{d.Encode, d.EncodeBetter, d.EncodeBest}[level]
			return func(dst, src []byte) []byte { return append(dst, enc(nil, src)...) }, func(dst, src []byte) ([]byte, error) { return d.Decode(dst, src) }
		}
	}
	methods := []method{
		{"none", func([][]byte) (func(dst, src []byte) []byte, func(dst, src []byte) ([]byte, error)) {
			return func(dst, src []byte) []byte { return append(dst, src...) }, func(dst, src []byte) ([]byte, error) { return append(dst, src...), nil }
		}},
		{"zstd fastest, no dictionary", zstdWith(zstd.SpeedFastest, 0)},
		{"zstd default, no dictionary", zstdWith(zstd.SpeedDefault, 0)},
		{"zstd fastest, dictionary per kind (1,000 samples)", zstdWith(zstd.SpeedFastest, 1000)},
		{"zstd fastest, dictionary per kind (2,000 samples)", zstdWith(zstd.SpeedFastest, 2000)},
		{"zstd default, dictionary per kind (2,000 samples)", zstdWith(zstd.SpeedDefault, 2000)},
		{"s2, no dictionary", func([][]byte) (func(dst, src []byte) []byte, func(dst, src []byte) ([]byte, error)) {
			return func(dst, src []byte) []byte { return s2.Encode(dst[:cap(dst)], src) }, func(dst, src []byte) ([]byte, error) { return s2.Decode(dst[:cap(dst)], src) }
		}},
		{"s2 better, no dictionary", func([][]byte) (func(dst, src []byte) []byte, func(dst, src []byte) ([]byte, error)) {
			return func(dst, src []byte) []byte { return s2.EncodeBetter(dst[:cap(dst)], src) }, func(dst, src []byte) ([]byte, error) { return s2.Decode(dst[:cap(dst)], src) }
		}},
		{"s2, dictionary per kind (1,000 samples)", s2Dict(1000, 16<<10, 0, 6)},
		{"s2 better, dictionary per kind (2,000 samples)", s2Dict(2000, 16<<10, 1, 6)},
		{"s2, dictionary per kind (2,000 samples)", s2Dict(2000, 16<<10, 0, 6)},
		{"s2 best, dictionary per kind (2,000 samples)", s2Dict(2000, 16<<10, 2, 6)},
		{"s2, dictionary per kind (2,000 samples, 64 KiB)", s2Dict(2000, 64<<10, 0, 6)},
		{"s2, dictionary per kind (500 samples, 8-byte hashes)", s2Dict(500, 16<<10, 0, 8)},
		{"s2, dictionary per kind (1,000 samples, 8-byte hashes)", s2Dict(1000, 16<<10, 0, 8)},
		{"s2, dictionary per kind (2,000 samples, 8-byte hashes)", s2Dict(2000, 16<<10, 0, 8)},
		{"s2 better, dictionary per kind (1,000 samples, 8-byte hashes)", s2Dict(1000, 16<<10, 1, 8)},
	}
	for b.Loop() {
		fmt.Printf("%d records, mean envelope %.0f bytes\n", n, float64(total)/float64(n))
		for _, m := range methods {
			var size int
			var train, enc, dec time.Duration
			for _, k := range kinds {
				recs := byKind[k]
				start := time.Now()
				compress, decompress := m.prepare(recs)
				train += time.Since(start)
				var buf, out []byte
				for _, e := range recs {
					start := time.Now()
					buf = compress(buf[:0], e)
					enc += time.Since(start)
					size += len(buf)
					start = time.Now()
					if out, err = decompress(out[:0], buf); err != nil {
						b.Fatal(err)
					}
					dec += time.Since(start)
				}
			}
			fmt.Printf("%-70s %5.0f bytes (%.2fx)  compress %5.2f µs  decompress %5.2f µs  training %v\n", m.name, float64(size)/float64(n),
				float64(total)/float64(size), float64(enc.Nanoseconds())/1e3/float64(n), float64(dec.Nanoseconds())/1e3/float64(n), train.Round(time.Millisecond))
		}
	}
}
