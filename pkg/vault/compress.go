package vault

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/klauspost/compress/dict"
	"github.com/klauspost/compress/zstd"
	"github.com/phr-project/phr/pkg/record"
	bolt "go.etcd.io/bbolt"
)

// Compressed envelopes (format 4).
//
// The plaintext of a sealed record (and of an earlier version in the
// history) is one of:
//
//	0x01 ‖ envelope                              formats 1 to 3, and what compression would not shrink
//	0x02 ‖ zstd frame, without its magic number   format 4: the whole 0x01 form, compressed
//
// A frame names the dictionary it was made with in its header
// (Dictionary_ID; none for 0). Dictionaries are trained per record kind
// from the vault's own records, the first time an import (or one batch)
// writes at least dictMinSamples records of a kind that has none; records
// of a kind written before that are compressed without one. They are
// stored sealed in the dictionary bucket under their ID (uint32 BE), never
// changed and never deleted:
//
//	0x01 ‖ uvarint length ‖ kind ‖ zstd dictionary
//
// A dictionary holds strings of the records it was trained on (that is
// what makes it work), so it is sealed like them.
const plainZstd = 2

// zstdMagic starts every zstd frame; stored frames leave it out.
var zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}

const (
	// dictMinSamples is how many records of a kind it takes to train
	// a dictionary for it; dictMaxSamples how many it is trained on.
	dictMinSamples = 1000
	dictMaxSamples = 2000
	// dictMaxSize bounds a dictionary.
	dictMaxSize = 16 << 10
	// maxDecompressed bounds what one value decompresses to (a record
	// with an embedded document; backups bound a line the same way).
	maxDecompressed = 256 << 20
)

// codec compresses and decompresses a vault's envelopes. Its
// dictionaries are loaded from the file the first time one is needed;
// they never change, so they stay loaded while the vault is open.
type codec struct {
	mu     sync.Mutex
	dicts  map[uint32][]byte // by ID
	kinds  map[string]uint32 // kind -> dictionary to compress it with
	loaded bool              // dicts hold every dictionary of the file
	dec    *zstd.Decoder     // knows every dictionary in dicts
	encs   map[uint32]*zstd.Encoder
}

var errDict = errors.New("unknown compression dictionary")

// load reads the dictionaries of the file (once).
func (c *codec) load(tx *bolt.Tx, keys *keyring) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.loadLocked(tx, keys)
}

func (c *codec) loadLocked(tx *bolt.Tx, keys *keyring) error {
	if c.loaded {
		return nil
	}
	c.dicts, c.kinds = map[uint32][]byte{}, map[string]uint32{}
	if b := tx.Bucket([]byte{bucketDicts}); b != nil {
		err := b.ForEach(func(k, sealed []byte) error {
			if len(k) != 4 {
				return fmt.Errorf("%w: dictionary key", ErrCorrupt)
			}
			pt, err := keys.open(bucketDicts, k, sealed)
			if err != nil {
				return fmt.Errorf("dictionary: %w", err)
			}
			kind, d, err := decodeDict(pt)
			if err != nil {
				return err
			}
			id := binary.BigEndian.Uint32(k)
			c.dicts[id] = d
			if cur, ok := c.kinds[kind]; !ok || id > cur {
				c.kinds[kind] = id
			}
			return nil
		})
		if err != nil {
			c.dicts, c.kinds = nil, nil
			return err
		}
	}
	c.loaded = true
	c.dec = nil
	return nil
}

func decodeDict(pt []byte) (kind string, d []byte, err error) {
	bad := fmt.Errorf("%w: malformed dictionary", ErrCorrupt)
	if len(pt) < 2 || pt[0] != 1 {
		return "", nil, bad
	}
	n, k := binary.Uvarint(pt[1:])
	if k <= 0 || n > uint64(len(pt)-1-k) {
		return "", nil, bad
	}
	kind = string(pt[1+k : 1+k+int(n)])
	return kind, pt[1+k+int(n):], nil
}

func encodeDict(kind string, d []byte) []byte {
	out := []byte{1}
	out = binary.AppendUvarint(out, uint64(len(kind)))
	out = append(out, kind...)
	return append(out, d...)
}

// reset forgets everything (a rotation reseals the dictionaries).
func (c *codec) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.close()
	c.dicts, c.kinds, c.loaded = nil, nil, false
}

// close releases the encoders and the decoder.
func (c *codec) close() {
	for _, e := range c.encs {
		e.Close()
	}
	c.encs = nil
	if c.dec != nil {
		c.dec.Close()
		c.dec = nil
	}
}

// decoder returns a decoder that knows every dictionary; the caller
// holds mu.
func (c *codec) decoder() (*zstd.Decoder, error) {
	if c.dec != nil {
		return c.dec, nil
	}
	ds := make([][]byte, 0, len(c.dicts))
	for _, d := range c.dicts {
		ds = append(ds, d)
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(2), zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxMemory(maxDecompressed), zstd.WithDecoderDicts(ds...))
	if err != nil {
		return nil, fmt.Errorf("%w: dictionary: %v", ErrCorrupt, err)
	}
	c.dec = dec
	return dec, nil
}

// decompress returns the envelope of a plaintext of either form,
// appended to dst. tx and keys load the dictionaries if need be.
func (v *Vault) decompress(tx *bolt.Tx, dst, pt []byte) ([]byte, error) {
	if len(pt) == 0 || pt[0] != plainZstd {
		return pt, nil
	}
	c := &v.codec
	c.mu.Lock()
	if err := c.loadLocked(tx, v.keys); err != nil {
		c.mu.Unlock()
		return nil, err
	}
	dec, err := c.decoder()
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	// The frame's magic number was left out: put it back in front.
	frame := make([]byte, 0, 4+len(pt)-1)
	frame = append(append(frame, zstdMagic...), pt[1:]...)
	out, err := dec.DecodeAll(frame, dst[:0])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return out, nil
}

// encoder returns the encoder for a dictionary (0: none); the caller
// holds mu.
func (c *codec) encoder(id uint32) (*zstd.Encoder, error) {
	if e := c.encs[id]; e != nil {
		return e, nil
	}
	opts := []zstd.EOption{zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderCRC(false), zstd.WithSingleSegment(true), zstd.WithLowerEncoderMem(true)}
	if id != 0 {
		d, ok := c.dicts[id]
		if !ok {
			return nil, errDict
		}
		opts = append(opts, zstd.WithEncoderDict(d))
	}
	e, err := zstd.NewWriter(nil, opts...)
	if err != nil {
		return nil, err
	}
	if c.encs == nil {
		c.encs = map[uint32]*zstd.Encoder{}
	}
	// An open vault keeps few encoders: one per kind it writes, and
	// each holds tables of a few hundred KiB.
	if len(c.encs) >= 8 {
		for k, old := range c.encs {
			old.Close()
			delete(c.encs, k)
			break
		}
	}
	c.encs[id] = e
	return e, nil
}

// compress returns the plaintext to seal for the envelope env of a
// record of the given kind: compressed with the kind's dictionary (or
// none), or env itself when that would not be smaller. The vault's
// dictionaries must be loaded (load).
func (c *codec) compress(kind string, env []byte) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, err := c.encoder(c.kinds[kind])
	if err != nil {
		return nil, err
	}
	frame := e.EncodeAll(env, make([]byte, 0, len(env)/2+16))
	if len(frame) < len(zstdMagic) || len(frame)-len(zstdMagic)+1 >= len(env) {
		return env, nil
	}
	// The magic number's last byte gives way to the form's.
	frame[len(zstdMagic)-1] = plainZstd
	return frame[len(zstdMagic)-1:], nil
}

// hasDict reports whether kind has a dictionary.
func (c *codec) hasDict(kind string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.kinds[kind]
	return ok
}

// dictSamples collects envelopes of kinds without a dictionary until
// there are enough to train one (an Import keeps one over its batches).
type dictSamples map[string][][]byte

// add keeps env as a sample of kind if that kind still needs them.
func (s dictSamples) add(kind string, env []byte) {
	if len(s[kind]) < dictMaxSamples {
		s[kind] = append(s[kind], env)
	}
}

// train makes a dictionary for each kind with enough samples and none
// yet, and stores it in the transaction. The samples of those kinds are
// dropped.
func (v *Vault) trainDicts(tx *bolt.Tx, samples dictSamples) error {
	var kinds []string
	for kind, s := range samples {
		if len(s) >= dictMinSamples && !v.codec.hasDict(kind) {
			kinds = append(kinds, kind)
		}
	}
	sort.Strings(kinds)
	if len(kinds) == 0 {
		return nil
	}
	b := tx.Bucket([]byte{bucketDicts})
	for _, kind := range kinds {
		id := uint32(1)
		if k, _ := b.Cursor().Last(); len(k) == 4 {
			id = binary.BigEndian.Uint32(k) + 1
		}
		d, err := dict.BuildZstdDict(samples[kind], dict.Options{MaxDictSize: dictMaxSize, HashBytes: 6, ZstdDictID: id, ZstdLevel: zstd.SpeedFastest})
		delete(samples, kind)
		if err != nil {
			continue // too little in common to build one: no dictionary
		}
		var key [4]byte
		binary.BigEndian.PutUint32(key[:], id)
		if err := v.putSealed(b, bucketDicts, key[:], 1, encodeDict(kind, d)); err != nil {
			return err
		}
		c := &v.codec
		c.mu.Lock()
		c.dicts[id] = d
		c.kinds[kind] = id
		if c.dec != nil {
			c.dec.Close()
			c.dec = nil
		}
		c.mu.Unlock()
		// If the transaction does not commit, the dictionary was never
		// stored: updateLocked then makes the codec forget it.
		v.codecDirty = true
	}
	return nil
}

// frame compresses a listing node's body without a dictionary: a zstd
// frame without its magic number.
func (v *Vault) frame(body []byte) ([]byte, error) {
	c := &v.codec
	c.mu.Lock()
	defer c.mu.Unlock()
	e, err := c.encoder(0)
	if err != nil {
		return nil, err
	}
	out := e.EncodeAll(body, make([]byte, 0, len(body)/3+16))
	return out[len(zstdMagic):], nil
}

// unframe decompresses what frame made.
func (v *Vault) unframe(tx *bolt.Tx, frame []byte) ([]byte, error) {
	pt := make([]byte, 0, 1+len(frame))
	pt = append(append(pt, plainZstd), frame...)
	return v.decompress(tx, nil, pt)
}

// sealEnvelope returns the plaintext to seal for a record: its envelope,
// compressed in format 4.
func (v *Vault) sealEnvelope(tx *bolt.Tx, r *record.Record) ([]byte, error) {
	env := encodeRecord(r)
	if v.format < 4 {
		return env, nil
	}
	if err := v.codec.load(tx, v.keys); err != nil {
		return nil, err
	}
	return v.codec.compress(r.Kind, env)
}

// openEnvelope opens a sealed record (or earlier version) and returns
// its envelope, decompressed, and the version its seal names.
func (v *Vault) openEnvelope(tx *bolt.Tx, bucket byte, key, sealed []byte) ([]byte, uint64, error) {
	pt, version, err := v.keys.openInto(nil, nil, bucket, key, sealed)
	if err != nil {
		return nil, 0, err
	}
	env, err := v.decompress(tx, nil, pt)
	return env, version, err
}

// sampleBatch runs before a batch is written (format 4): the batch's
// records of kinds that have no dictionary join the samples, and each
// kind with enough of them gets its dictionary, which the batch then
// uses. samples may be nil (this batch alone).
func (v *Vault) sampleBatch(tx *bolt.Tx, prep []prepared, samples dictSamples) error {
	if err := v.codec.load(tx, v.keys); err != nil {
		return err
	}
	if samples == nil {
		if len(prep) < dictMinSamples {
			return nil
		}
		samples = dictSamples{}
	}
	need := map[string]bool{}
	for i := range prep {
		r := prep[i].rec
		n, ok := need[r.Kind]
		if !ok {
			n = !v.codec.hasDict(r.Kind)
			need[r.Kind] = n
		}
		if n {
			samples.add(r.Kind, encodeRecord(r))
		}
	}
	return v.trainDicts(tx, samples)
}
