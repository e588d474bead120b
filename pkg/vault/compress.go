package vault

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/klauspost/compress/dict"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/phr-project/phr/pkg/kv"
	"github.com/phr-project/phr/pkg/record"
)

// Compressed envelopes (format 4).
//
// The plaintext of a sealed record (and of an earlier version in the
// history) is one of:
//
//	0x01 ‖ envelope                                   formats 1 to 3, and what compression would not shrink
//	0x03 ‖ uvarint dictionary ‖ S2 block of (0x01 ‖ envelope)   format 4 (dictionary 0: none)
//
// S2 is klauspost/compress's Snappy-derived block format; a dictionary
// is trained per record kind from the vault's own records (dict.
// BuildS2Dict), the first time an import (or one batch) writes at least
// dictMinSamples records of a kind that has none; records of a kind
// written before that are compressed without one. Measured on 200,000
// Apple Health samples (docs/performance.md), a dictionary per kind
// makes an envelope 3.8 times smaller where compressing each alone saves
// a fifth; zstd compresses them a little better (4.0 to 4.6 times) but
// takes 6 to 16 times as long per record, which an import of millions
// of samples pays. A dictionary trained to hold strings of at least 8
// bytes (dictHashBytes) on 1,000 samples compresses better than one of
// 6-byte strings on 2,000 (220 bytes against 247 on that vault), and
// one of 500 samples, 262 bytes, in a fifth of the time: training was a
// quarter of the time of a 3.8 MB import, so a kind's first dictionary
// is trained on 500 and the ones that follow on 2,000. Dictionaries are stored sealed in the dictionary
// bucket under their number (uint32 BE), never changed and never
// deleted:
//
//	0x01 ‖ uvarint length ‖ kind ‖ S2 dictionary
//
// A dictionary holds strings of the records it was trained on (that is
// what makes it work), so it is sealed like them. The listing index's
// nodes, larger and written less often, are zstd frames (0x02, without
// their magic number), without a dictionary.
const (
	plainZstd = 2
	plainS2   = 3
)

// zstdMagic starts every zstd frame; stored frames leave it out.
var zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}

const (
	// dictMinSamples is how many records of a kind it takes to train
	// a dictionary for it; dictMaxSamples how many it is trained on.
	// A kind's first dictionary is trained on dictFirstSamples of them
	// (every import of 1,000 records of a new kind pays for it); later
	// ones, which only imports of tens of thousands make, on more.
	dictMinSamples   = 1000
	dictFirstSamples = 500
	dictMaxSamples   = 2000
	// dictHashBytes is the shortest string a dictionary is trained
	// to hold (dict.Options.HashBytes).
	dictHashBytes = 8
	// dictMaxSize bounds a dictionary.
	dictMaxSize = 16 << 10
	// maxDecompressed bounds what one value decompresses to (a record
	// with an embedded document; backups bound a line the same way).
	maxDecompressed = 256 << 20
)

// codec compresses and decompresses a vault's envelopes. Its
// dictionaries are loaded from the file the first time one is needed;
// they never change, so they stay loaded while the vault is open.
//
// Another Vault on the same store (a phrd node) may store dictionaries
// after these were loaded. A record compressed with a dictionary the
// codec does not know has it loaded from the transaction that reads the
// record (decompress), and a write transaction about to train
// dictionaries first loads those stored since (refresh, in sampleBatch),
// so that a kind another Vault trained one for is not trained again: the
// codec never takes "no dictionary for this kind" from an earlier
// transaction. Dictionary numbers come from the store (the bucket's last
// key) inside the write transaction, which holds the store's write lock,
// so two Vaults never store two dictionaries under one number.
type codec struct {
	mu     sync.Mutex
	dicts  map[uint32]*s2.Dict // by number
	kinds  map[string]uint32   // kind -> dictionary to compress it with
	loaded bool                // dicts hold every dictionary of the file, up to last
	last   uint32              // the highest number loaded
	// zstd for the listing index's nodes.
	dec *zstd.Decoder
	enc *zstd.Encoder
}

var errDict = errors.New("unknown compression dictionary")

// load reads the dictionaries of the file (once).
func (c *codec) load(tx kv.Tx, keys *keyring) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.loadLocked(tx, keys)
}

func (c *codec) loadLocked(tx kv.Tx, keys *keyring) error {
	if c.loaded {
		return nil
	}
	if tx == nil {
		// A worker that must not use the transaction (decompress).
		return fmt.Errorf("%w: the dictionaries were dropped during the read", errDict)
	}
	c.dicts, c.kinds, c.last = map[uint32]*s2.Dict{}, map[string]uint32{}, 0
	if err := c.loadAfter(tx, keys); err != nil {
		c.dicts, c.kinds = nil, nil
		return err
	}
	c.loaded = true
	return nil
}

// refresh loads the dictionaries stored since the codec loaded its own
// (by another Vault of the same store), or all of them the first time.
func (c *codec) refresh(tx kv.Tx, keys *keyring) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.refreshLocked(tx, keys)
}

func (c *codec) refreshLocked(tx kv.Tx, keys *keyring) error {
	if !c.loaded {
		return c.loadLocked(tx, keys)
	}
	b := tx.Bucket([]byte{bucketDicts})
	if b == nil {
		return nil
	}
	if k, _ := b.Cursor().Last(); len(k) != 4 || binary.BigEndian.Uint32(k) <= c.last {
		return nil
	}
	return c.loadAfter(tx, keys)
}

// loadAfter loads the dictionaries numbered above c.last.
func (c *codec) loadAfter(tx kv.Tx, keys *keyring) error {
	b := tx.Bucket([]byte{bucketDicts})
	if b == nil {
		return nil
	}
	var from [4]byte
	binary.BigEndian.PutUint32(from[:], c.last+1)
	cur := b.Cursor()
	for k, sealed := cur.Seek(from[:]); k != nil; k, sealed = cur.Next() {
		if len(k) != 4 {
			return fmt.Errorf("%w: dictionary key", ErrCorrupt)
		}
		pt, err := keys.open(bucketDicts, k, sealed)
		if err != nil {
			return fmt.Errorf("dictionary: %w", err)
		}
		kind, raw, err := decodeDict(pt)
		if err != nil {
			return err
		}
		d := s2.NewDict(raw)
		if d == nil {
			return fmt.Errorf("%w: malformed dictionary", ErrCorrupt)
		}
		id := binary.BigEndian.Uint32(k)
		c.dicts[id] = d
		if cur, ok := c.kinds[kind]; !ok || id > cur {
			c.kinds[kind] = id
		}
		c.last = max(c.last, id)
	}
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

// reset forgets the dictionaries (a rotation reseals them; a
// transaction that trained one failed) and releases the zstd coders.
func (c *codec) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.enc != nil {
		c.enc.Close()
		c.enc = nil
	}
	if c.dec != nil {
		c.dec.Close()
		c.dec = nil
	}
	c.dicts, c.kinds, c.loaded, c.last = nil, nil, false, 0
}

// decompress returns the envelope (or node body) of a plaintext of any
// form; tx and the vault's keys load the dictionaries if need be. A
// goroutine that must not use tx (a worker beside the one reading it: a
// PostgreSQL transaction is one connection) passes nil, after the
// dictionaries of tx were loaded (codec.refresh).
func (v *Vault) decompress(tx kv.Tx, dst, pt []byte) ([]byte, error) {
	if len(pt) == 0 {
		return pt, nil
	}
	switch pt[0] {
	case plainS2:
		id, n := binary.Uvarint(pt[1:])
		if n <= 0 {
			return nil, fmt.Errorf("%w: malformed compressed value", ErrCorrupt)
		}
		block := pt[1+n:]
		if size, err := s2.DecodedLen(block); err != nil || size > maxDecompressed {
			return nil, fmt.Errorf("%w: malformed compressed value", ErrCorrupt)
		}
		var out []byte
		var err error
		if id == 0 {
			out, err = s2.Decode(dst[:cap(dst)], block)
		} else {
			c := &v.codec
			c.mu.Lock()
			err = c.loadLocked(tx, v.keys)
			d := c.dicts[uint32(id)]
			if d == nil && err == nil && tx != nil {
				// Stored by another Vault of the store since.
				err = c.refreshLocked(tx, v.keys)
				d = c.dicts[uint32(id)]
			}
			c.mu.Unlock()
			if err != nil {
				return nil, err
			}
			if d == nil {
				return nil, fmt.Errorf("%w: %w", ErrCorrupt, errDict)
			}
			out, err = d.Decode(dst[:cap(dst)], block)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		return out, nil
	case plainZstd:
		c := &v.codec
		c.mu.Lock()
		if c.dec == nil {
			dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(2), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxMemory(maxDecompressed))
			if err != nil {
				c.mu.Unlock()
				return nil, err
			}
			c.dec = dec
		}
		dec := c.dec
		c.mu.Unlock()
		// The frame's magic number was left out: put it back in front.
		frame := make([]byte, 0, len(zstdMagic)+len(pt)-1)
		frame = append(append(frame, zstdMagic...), pt[1:]...)
		out, err := dec.DecodeAll(frame, dst[:0])
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		return out, nil
	}
	return pt, nil
}

// compress returns the plaintext to seal for the envelope env of a
// record of the given kind: compressed with the kind's dictionary (or
// none), or env itself when that would not be smaller. The vault's
// dictionaries must be loaded (load).
func (c *codec) compress(kind string, env []byte) []byte {
	c.mu.Lock()
	id := c.kinds[kind]
	d := c.dicts[id]
	c.mu.Unlock()
	out := make([]byte, 1, 1+binary.MaxVarintLen32+s2.MaxEncodedLen(len(env)))
	out[0] = plainS2
	out = binary.AppendUvarint(out, uint64(id))
	var block []byte
	if d != nil {
		block = d.Encode(out[len(out):cap(out)], env)
	} else {
		block = s2.Encode(out[len(out):cap(out)], env)
	}
	if len(out)+len(block) >= len(env) {
		return env
	}
	return out[:len(out)+len(block)]
}

// hasDict reports whether kind has a dictionary.
func (c *codec) hasDict(kind string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.kinds[kind]
	return ok
}

// dictSamples collects, per kind, records to train a dictionary on (an
// Import keeps one over its batches).
//
// A kind without a dictionary gets one once it has dictMinSamples
// records, trained on dictFirstSamples of its first dictMaxSamples. Those come from the start of a
// file, which is seldom like the rest (an Apple Health export lists
// every sample of one type, then the next type's), so an import then
// keeps a uniform sample of the kind's records (a reservoir of
// dictMaxSamples) and trains the kind a new dictionary from it after
// retrainAfter records of the kind, and again after 4, 16 and 64 times
// that many. Each dictionary stays for the records made with it.
type dictSamples map[string]*kindSamples

type kindSamples struct {
	samples [][]byte
	seen    int // records of the kind since the last dictionary
	trained int // dictionaries this import trained for the kind
	rng     uint64
}

// retrainAfter is how many records of a kind an import writes before it
// trains the kind a dictionary from a sample of them.
var retrainAfter = 20_000

// due reports whether ks has what it takes for a (new) dictionary.
func (ks *kindSamples) due(hasDict bool) bool {
	if !hasDict {
		return len(ks.samples) >= dictMinSamples
	}
	return ks.trained < 4 && ks.seen >= retrainAfter<<(2*ks.trained)
}

// add offers a record of the kind: kept until there are dictMaxSamples,
// then in their place with a chance that keeps the sample uniform.
func (ks *kindSamples) add(env func() []byte) {
	ks.seen++
	if len(ks.samples) < dictMaxSamples {
		ks.samples = append(ks.samples, env())
		return
	}
	// xorshift: which record to replace, if any.
	ks.rng ^= ks.rng << 13
	ks.rng ^= ks.rng >> 7
	ks.rng ^= ks.rng << 17
	if i := ks.rng % uint64(ks.seen); i < uint64(len(ks.samples)) {
		ks.samples[i] = env()
	}
}

// trainDicts makes a dictionary for each kind whose samples are due, and
// stores it in the transaction.
func (v *Vault) trainDicts(tx kv.Tx, samples dictSamples) error {
	var kinds []string
	first := map[string]bool{}
	for kind, ks := range samples {
		has := v.codec.hasDict(kind)
		if ks.due(has) {
			kinds = append(kinds, kind)
			first[kind] = !has
		}
	}
	sort.Strings(kinds)
	b := tx.Bucket([]byte{bucketDicts})
	for _, kind := range kinds {
		ks := samples[kind]
		id := uint32(1)
		if k, _ := b.Cursor().Last(); len(k) == 4 {
			id = binary.BigEndian.Uint32(k) + 1
		}
		train := ks.samples
		if first[kind] && len(train) > dictFirstSamples {
			// Every n-th of a uniform sample is a uniform sample.
			step := (len(train) + dictFirstSamples - 1) / dictFirstSamples
			train = make([][]byte, 0, dictFirstSamples)
			for i := 0; i < len(ks.samples); i += step {
				train = append(train, ks.samples[i])
			}
		}
		raw, err := dict.BuildS2Dict(train, dict.Options{MaxDictSize: dictMaxSize, HashBytes: dictHashBytes})
		ks.trained++
		ks.seen, ks.samples = 0, ks.samples[:0]
		d := s2.NewDict(raw)
		if err != nil || d == nil {
			continue // too little in common to build one: no dictionary
		}
		var key [4]byte
		binary.BigEndian.PutUint32(key[:], id)
		if err := v.putSealed(b, bucketDicts, key[:], 1, encodeDict(kind, raw)); err != nil {
			return err
		}
		c := &v.codec
		c.mu.Lock()
		c.dicts[id] = d
		c.kinds[kind] = id
		c.last = max(c.last, id)
		c.mu.Unlock()
		// If the transaction does not commit, the dictionary was never
		// stored: updateLocked then makes the codec forget it.
		v.codecDirty = true
	}
	return nil
}

// sampleBatch runs before a batch is written (format 4): the batch's
// records join the samples, and each kind whose samples are due gets a
// dictionary, which the batch then uses. samples may be nil (this batch
// alone: only kinds without a dictionary).
func (v *Vault) sampleBatch(tx kv.Tx, prep []prepared, samples dictSamples) error {
	// What another Vault of the store trained since counts: a kind that
	// has a dictionary now is not trained one again.
	if err := v.codec.refresh(tx, v.keys); err != nil {
		return err
	}
	alone := samples == nil
	if alone {
		if len(prep) < dictMinSamples {
			return nil
		}
		samples = dictSamples{}
	}
	has := map[string]bool{}
	for i := range prep {
		r := prep[i].rec
		h, ok := has[r.Kind]
		if !ok {
			h = v.codec.hasDict(r.Kind)
			has[r.Kind] = h
		}
		if h && alone {
			continue
		}
		ks := samples[r.Kind]
		if ks == nil {
			ks = &kindSamples{rng: uint64(len(samples))*0x9e3779b97f4a7c15 + 1}
			samples[r.Kind] = ks
		}
		if h && ks.trained >= 4 {
			continue
		}
		ks.add(func() []byte { return encodeRecord(r) })
	}
	return v.trainDicts(tx, samples)
}

// frame compresses a listing node's body without a dictionary: a zstd
// frame without its magic number.
func (v *Vault) frame(body []byte) ([]byte, error) {
	c := &v.codec
	c.mu.Lock()
	if c.enc == nil {
		e, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1),
			zstd.WithEncoderCRC(false), zstd.WithLowerEncoderMem(true))
		if err != nil {
			c.mu.Unlock()
			return nil, err
		}
		c.enc = e
	}
	e := c.enc
	c.mu.Unlock()
	out := e.EncodeAll(body, make([]byte, 0, len(body)/3+16))
	return out[len(zstdMagic):], nil
}

// unframe decompresses what frame made.
func (v *Vault) unframe(tx kv.Tx, frame []byte) ([]byte, error) {
	pt := make([]byte, 0, 1+len(frame))
	pt = append(append(pt, plainZstd), frame...)
	return v.decompress(tx, nil, pt)
}

// sealEnvelope returns the plaintext to seal for a record: its envelope,
// compressed in format 4.
func (v *Vault) sealEnvelope(tx kv.Tx, r *record.Record) ([]byte, error) {
	env := encodeRecord(r)
	if v.format < 4 {
		return env, nil
	}
	if err := v.codec.load(tx, v.keys); err != nil {
		return nil, err
	}
	return v.codec.compress(r.Kind, env), nil
}

// openEnvelope opens a sealed record (or earlier version) and returns
// its envelope, decompressed, and the version its seal names.
func (v *Vault) openEnvelope(tx kv.Tx, bucket byte, key, sealed []byte) ([]byte, uint64, error) {
	pt, version, err := v.keys.openInto(nil, nil, bucket, key, sealed)
	if err != nil {
		return nil, 0, err
	}
	env, err := v.decompress(tx, nil, pt)
	return env, version, err
}
