package server

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"os"
	"sync"

	"github.com/phr-project/phr/pkg/importers"
)

// A spool holds an upload while it is imported: in DATA/tmp, under a
// random name, sealed under a key that exists only in this process's
// memory (AES-256-GCM, a fresh key per upload). The file is a run of
// sealed chunks of spoolChunk bytes of plaintext (the last one shorter),
// each spoolChunk+16 bytes on disk, sealed with the chunk's index as
// nonce; the plaintext's length is kept in memory, not on disk. So the
// disk never holds an upload in plaintext: a crash leaves only ciphertext
// whose key died with the process (and the next start deletes it), and a
// chunk swapped, cut or changed on disk while the upload is imported
// fails to open. Reading decrypts one chunk at a time, so zip archives
// (which need random access) import as from a plain file.
type spool struct {
	f    *os.File
	aead cipher.AEAD
	key  []byte
	hash hash.Hash

	mu     sync.Mutex // ReadAt may be called from several goroutines
	buf    []byte     // the chunk being filled, then (after finish) the chunk last read
	chunks int64      // chunks sealed to the file
	size   int64      // plaintext bytes
	done   bool
	cached int64 // index of the chunk in buf when reading; -1 for none
}

const (
	spoolChunk = 64 << 10
	spoolTag   = 16
)

var spoolAD = []byte("phrd upload spool v1")

var errSpoolDamaged = errors.New("the spooled upload was changed on disk")

// newSpool starts a spool file in dir.
func newSpool(dir string) (*spool, error) {
	key := make([]byte, 32)
	rand.Read(key)
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(dir, "upload-*")
	if err != nil {
		return nil, err
	}
	return &spool{f: f, aead: aead, key: key, hash: sha256.New(), buf: make([]byte, 0, spoolChunk), cached: -1}, nil
}

func (s *spool) nonce(i int64) []byte {
	n := make([]byte, s.aead.NonceSize())
	binary.BigEndian.PutUint64(n[len(n)-8:], uint64(i))
	return n
}

// Write takes plaintext of the upload.
func (s *spool) Write(p []byte) (int, error) {
	if s.done {
		return 0, errors.New("spool: write after finish")
	}
	n := len(p)
	s.hash.Write(p)
	s.size += int64(n)
	for len(p) > 0 {
		k := min(spoolChunk-len(s.buf), len(p))
		s.buf = append(s.buf, p[:k]...)
		p = p[k:]
		if len(s.buf) == spoolChunk {
			if err := s.seal(); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

// seal writes the chunk in buf to the file.
func (s *spool) seal() error {
	ct := s.aead.Seal(nil, s.nonce(s.chunks), s.buf, spoolAD)
	if _, err := s.f.Write(ct); err != nil {
		return err
	}
	s.chunks++
	clear(s.buf)
	s.buf = s.buf[:0]
	return nil
}

// finish seals the last chunk; the spool is read from then on.
func (s *spool) finish() error {
	if s.done {
		return nil
	}
	if len(s.buf) > 0 {
		if err := s.seal(); err != nil {
			return err
		}
	}
	s.done = true
	return nil
}

// ReadAt reads plaintext at off, as io.ReaderAt.
func (s *spool) ReadAt(p []byte, off int64) (int, error) {
	if !s.done {
		return 0, errors.New("spool: read before finish")
	}
	if off < 0 {
		return 0, errors.New("spool: negative offset")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for len(p) > 0 {
		if off >= s.size {
			return n, io.EOF
		}
		i := off / spoolChunk
		if err := s.load(i); err != nil {
			return n, err
		}
		k := copy(p, s.buf[off-i*spoolChunk:])
		n += k
		p = p[k:]
		off += int64(k)
	}
	return n, nil
}

// load decrypts chunk i into buf.
func (s *spool) load(i int64) error {
	if s.cached == i {
		return nil
	}
	s.cached = -1
	want := min(int64(spoolChunk), s.size-i*spoolChunk)
	ct := make([]byte, want+spoolTag)
	if _, err := s.f.ReadAt(ct, i*(spoolChunk+spoolTag)); err != nil {
		return errSpoolDamaged
	}
	pt, err := s.aead.Open(s.buf[:0], s.nonce(i), ct, spoolAD)
	if err != nil || int64(len(pt)) != want {
		return errSpoolDamaged
	}
	s.buf, s.cached = pt, i
	return nil
}

// input is the spooled upload for the importers.
func (s *spool) input(name string) *importers.Input {
	return &importers.Input{Name: name, R: io.NewSectionReader(s, 0, s.size), ReaderAt: s, Size: s.size, SHA256: hex.EncodeToString(s.hash.Sum(nil))}
}

// Close removes the file and forgets the key.
func (s *spool) Close() error {
	clear(s.key)
	clear(s.buf)
	err := s.f.Close()
	if rerr := os.Remove(s.f.Name()); err == nil {
		err = rerr
	}
	return err
}
