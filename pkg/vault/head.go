package vault

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"slices"
	"strconv"
	"strings"

	"github.com/phr-project/phr/pkg/kv"
)

// The authenticated head (format 3).
//
// A sealed value proves where it belongs and at which version, but not
// that it is the newest value of its place: an older sealed value put
// back where it was (a deleted record's last live version, a record
// before an edit, a key slot that was removed) opens as well as the
// current one. The head closes that gap. It is one sealed value in the
// meta bucket, rewritten by every write transaction:
//
//	0x01 ‖ counter (uint64 BE) ‖ change sequence (uint64 BE) ‖ n (1 byte) ‖ n × (bucket letter ‖ total (32 bytes))
//
// sealed under bucket 'm', key "head", version = counter. The counter
// counts the write transactions since the vault was made (or upgraded to
// format 3); the change sequence is the changes feed's. Each total is the
// XOR of one element per value in that bucket:
//
//	element = HMAC-SHA256(head key, bucket ‖ uint16 BE len(key) ‖ key ‖ part)
//
// where part is, for a sealed value, its header (seal version, term,
// version, nonce) and its tag, and for anything else (a key slot) the
// whole value. A sealed value opens only with its own nonce and tag, and
// nonces are random, so an older value of the same place gives another
// element. The totals are inside the sealed head: without the vault key
// nobody sees them or can compute an element, so nobody can choose values
// whose elements cancel out.
//
// Every write keeps the totals up to date in O(1) per value (the old
// element out, the new one in: putSealed, deleteSealed, putSlot,
// deleteSlot). Open checks the head, the change sequence and the totals
// of the small buckets (key slots, settings); the records' total is
// checked by every full scan (listings, Check, Verify) without unsealing
// anything more than the scan does.

// headBuckets are the buckets the head covers: every bucket of sealed
// values, and the key slots. A bucket added later (a record's earlier
// versions, say) is added here and written with putSealed and
// deleteSealed; a head written before it existed has no total for it,
// which stands for an empty bucket.
var headBuckets = []byte{bucketSlots, bucketRecords, bucketSettings, bucketHistory, bucketListing, bucketDicts}

// headKey names the head in the meta bucket.
const headKey = "head"

// Head plaintext versions: 1 (format 3), and 2 (format 4), which adds
// the listing index's root after the totals:
//
//	0x02 ‖ counter ‖ change sequence ‖ n ‖ n × (bucket ‖ total) ‖ listing meta (listing_tree.go)
const (
	headPlainV1      = 1
	headPlainV2      = 2
	headPlainVersion = headPlainV2
)

// ErrTampered: the file does not match its authenticated head: a value
// was put back, removed or added by someone without the vault key. An
// error that matches it matches ErrCorrupt too.
var ErrTampered = errors.New("the vault file does not match its authenticated head")

// ErrRolledBack: the file is older than one this device has seen (see
// RollbackError).
var ErrRolledBack = errors.New("the vault file is older than one this device has seen")

// headState is a decoded head.
type headState struct {
	counter uint64
	seq     uint64
	totals  map[byte]*[32]byte
	// keys, if set, are the keys to seal the head under at commit
	// instead of the vault's (a rotation's new keys).
	keys *keyring
	// list is the listing index's root (format 4; nil before).
	list *listMeta
}

func newHeadState() *headState { return &headState{totals: map[byte]*[32]byte{}} }

// xor adds (or removes: XOR is its own inverse) an element.
func (h *headState) xor(bucket byte, e [32]byte) {
	t := h.totals[bucket]
	if t == nil {
		t = new([32]byte)
		h.totals[bucket] = t
	}
	subtle.XORBytes(t[:], t[:], e[:])
}

func (h *headState) total(bucket byte) [32]byte {
	if t := h.totals[bucket]; t != nil {
		return *t
	}
	return [32]byte{}
}

func (h *headState) encode() []byte {
	out := make([]byte, 0, 1+8+8+1+len(headBuckets)*33+64)
	if h.list != nil {
		out = append(out, headPlainV2)
	} else {
		out = append(out, headPlainV1)
	}
	out = binary.BigEndian.AppendUint64(out, h.counter)
	out = binary.BigEndian.AppendUint64(out, h.seq)
	var letters []byte
	for _, b := range allBuckets {
		if _, ok := h.totals[b]; ok {
			letters = append(letters, b)
		}
	}
	var extra []byte
	for b := range h.totals {
		if bytes.IndexByte(letters, b) < 0 {
			extra = append(extra, b)
		}
	}
	slices.Sort(extra)
	letters = append(letters, extra...)
	out = append(out, byte(len(letters)))
	for _, b := range letters {
		out = append(out, b)
		out = append(out, h.totals[b][:]...)
	}
	if h.list != nil {
		out = h.list.encode(out)
	}
	return out
}

func decodeHead(pt []byte) (*headState, error) {
	bad := fmt.Errorf("%w: malformed head", ErrCorrupt)
	if len(pt) < 18 {
		return nil, bad
	}
	if pt[0] != headPlainV1 && pt[0] != headPlainV2 {
		if pt[0] > headPlainVersion {
			return nil, ErrNewerVersion
		}
		return nil, bad
	}
	h := newHeadState()
	h.counter = binary.BigEndian.Uint64(pt[1:9])
	h.seq = binary.BigEndian.Uint64(pt[9:17])
	n := int(pt[17])
	rest := pt[18:]
	if len(rest) < n*33 || (pt[0] == headPlainV1 && len(rest) != n*33) {
		return nil, bad
	}
	if pt[0] == headPlainV2 {
		m, err := decodeListMeta(rest[n*33:])
		if err != nil {
			return nil, err
		}
		h.list = m
		rest = rest[:n*33]
	}
	for i := 0; i < n; i++ {
		var t [32]byte
		copy(t[:], rest[i*33+1:i*33+33])
		h.totals[rest[i*33]] = &t
	}
	return h, nil
}

// element is a value's contribution to its bucket's total.
func (k *keyring) element(bucket byte, key, value []byte) [32]byte {
	m := k.elemMAC.Get().(*elemHash)
	m.h.Reset()
	buf := append(m.buf[:0], bucket, byte(len(key)>>8), byte(len(key)))
	buf = append(buf, key...)
	if hdr := sealedHeaderLen(value); hdr > 0 {
		buf = append(buf, value[:hdr]...)
		buf = append(buf, value[len(value)-16:]...)
		m.h.Write(buf)
	} else {
		m.h.Write(buf)
		m.h.Write(value)
	}
	m.buf = buf
	var e [32]byte
	m.h.Sum(e[:0])
	k.elemMAC.Put(m)
	return e
}

// elemHash is an HMAC under the head key with a scratch buffer for its
// input, pooled: writes compute two elements per value.
type elemHash struct {
	h   hash.Hash
	buf []byte
}

// sealedHeaderLen is the header length of a sealed value, or 0 if value
// is not one (a key slot's JSON starts with '{').
func sealedHeaderLen(value []byte) int {
	if len(value) == 0 {
		return 0
	}
	switch value[0] {
	case sealV1:
		if len(value) >= sealHeaderV1+16 {
			return sealHeaderV1
		}
	case sealV2:
		if len(value) >= sealHeaderV2+16 {
			return sealHeaderV2
		}
	}
	return 0
}

// bucketTotal computes a bucket's total from what it holds; tick, if not
// nil, is called with each value's size (a long read drops the mapped
// pages it has passed: scanTrim).
func bucketTotal(keys *keyring, b kv.Bucket, bucket byte, tick func(int)) [32]byte {
	var t [32]byte
	if b == nil {
		return t
	}
	b.ForEach(func(k, val []byte) error {
		if val == nil {
			return nil
		}
		if tick != nil {
			tick(len(k) + len(val))
		}
		e := keys.element(bucket, k, val)
		subtle.XORBytes(t[:], t[:], e[:])
		return nil
	})
	return t
}

// computeHead builds a head from what the file holds, with the given
// counter: for a new vault, an upgrade, a rotation, or a head the owner
// accepts as it is.
func computeHead(tx kv.Tx, keys *keyring, counter uint64) *headState {
	h := newHeadState()
	h.counter = counter
	h.seq = tx.Bucket([]byte{bucketChanges}).Sequence()
	for _, b := range headBuckets {
		t := bucketTotal(keys, tx.Bucket([]byte{b}), b, nil)
		h.totals[b] = &t
	}
	return h
}

// storeHead seals h into the meta bucket.
func storeHead(tx kv.Tx, keys *keyring, h *headState) error {
	return tx.Bucket([]byte{bucketMeta}).Put([]byte(headKey), keys.seal(bucketMeta, []byte(headKey), h.counter, h.encode()))
}

// loadHead reads and opens the head; (nil, nil) if there is none.
func loadHead(tx kv.Tx, keys *keyring) (*headState, error) {
	sealed := tx.Bucket([]byte{bucketMeta}).Get([]byte(headKey))
	if sealed == nil {
		return nil, nil
	}
	pt, version, err := keys.openInto(nil, nil, bucketMeta, []byte(headKey), sealed)
	if err != nil {
		return nil, fmt.Errorf("head: %w", err)
	}
	h, err := decodeHead(pt)
	if err != nil {
		return nil, err
	}
	if h.counter != version {
		return nil, fmt.Errorf("%w: head counter does not match its seal", ErrCorrupt)
	}
	return h, nil
}

// tampered is the error for a file that does not match its head: it
// matches ErrTampered and ErrCorrupt.
func tampered(what string) error { return &tamperError{what} }

type tamperError struct{ what string }

func (e *tamperError) Error() string { return ErrTampered.Error() + ": " + e.what }

func (e *tamperError) Is(target error) bool { return target == ErrTampered || target == ErrCorrupt }

// bucketNames says what a bucket holds, for people.
func bucketName(b byte) string {
	switch b {
	case bucketSlots:
		return "key slots"
	case bucketRecords:
		return "records"
	case bucketSettings:
		return "settings"
	case bucketHistory:
		return "earlier versions"
	case bucketListing:
		return "the listing index"
	case bucketDicts:
		return "compression dictionaries"
	}
	return "bucket " + string(rune(b))
}

// verifyHeadTx compares the file with its head: the change sequence and
// the totals of the given buckets. It returns one line per mismatch.
func verifyHeadTx(tx kv.Tx, keys *keyring, h *headState, buckets []byte, tick func(int)) []string {
	var bad []string
	if seq := tx.Bucket([]byte{bucketChanges}).Sequence(); seq != h.seq {
		bad = append(bad, fmt.Sprintf("the change sequence is %d, the head says %d", seq, h.seq))
	}
	for _, b := range buckets {
		if got := bucketTotal(keys, tx.Bucket([]byte{b}), b, tick); got != h.total(b) {
			bad = append(bad, bucketName(b)+" do not match the head: a value was put back, removed or added without the key")
		}
	}
	return bad
}

// The write path. Only one write transaction runs at a time (bbolt's
// rule), so the head being written lives in v.wh for its duration
// (updateLocked). Each write transaction reads the head from the file
// (one small value to open): a copy kept in memory would have to be
// updated when a transaction commits, and bbolt runs commit handlers
// after it lets the next writer in.

// putSealed seals pt as the given version of bucket/key, stores it and
// keeps the head's total of that bucket up to date. Every write of a
// sealed value goes through it (or deleteSealed).
func (v *Vault) putSealed(b kv.Bucket, bucket byte, key []byte, version uint64, pt []byte) error {
	return v.putSealedValue(b, bucket, key, v.keys.seal(bucket, key, version, pt))
}

// putSealedValue stores an already sealed value (or a key slot) and keeps
// the head up to date.
func (v *Vault) putSealedValue(b kv.Bucket, bucket byte, key, value []byte) error {
	if h := v.wh; h != nil {
		if old := b.Get(key); old != nil {
			h.xor(bucket, v.keys.element(bucket, key, old))
		}
		h.xor(bucket, v.keys.element(bucket, key, value))
	}
	return b.Put(key, value)
}

// putSealedNew is putSealed for a key the caller knows is not in the
// bucket yet (a new record): it saves looking up the old value.
func (v *Vault) putSealedNew(b kv.Bucket, bucket byte, key []byte, version uint64, pt []byte) error {
	sealed := v.keys.seal(bucket, key, version, pt)
	if h := v.wh; h != nil {
		h.xor(bucket, v.keys.element(bucket, key, sealed))
	}
	return b.Put(key, sealed)
}

// deleteSealed deletes bucket/key and takes it out of the head's total.
func (v *Vault) deleteSealed(b kv.Bucket, bucket byte, key []byte) error {
	if h := v.wh; h != nil {
		if old := b.Get(key); old != nil {
			h.xor(bucket, v.keys.element(bucket, key, old))
		}
	}
	return b.Delete(key)
}

// replaceHead makes the head of the running write transaction h (a
// rotation, which rewrote everything under a new key).
func (v *Vault) replaceHead(h *headState) {
	if v.wh != nil {
		*v.wh = *h
	}
}

// beginHead starts the head of a write transaction from the one in the
// file, or returns nil for a vault without one (format 1 or 2, before its
// upgrade; or a file whose head is missing, opened Unverified: Check
// reports it until AcceptHead writes one).
func (v *Vault) beginHead(tx kv.Tx) (*headState, error) {
	if v.format < 3 {
		return nil, nil
	}
	return loadHead(tx, v.keys)
}

// commitHead stores the transaction's head.
func (v *Vault) commitHead(tx kv.Tx, h *headState) error {
	keys := v.keys
	if h.keys != nil {
		keys = h.keys
		h.keys = nil
	}
	h.counter++
	h.seq = tx.Bucket([]byte{bucketChanges}).Sequence()
	return storeHead(tx, keys, h)
}

// Head identifies one state of a vault: the count of write transactions
// that made it, and a keyed tag of its authenticated head. A device
// remembers the newest Head it has seen of each vault (Options.Heads), so
// that a file put back to an older copy is noticed at the next open. It
// holds nothing secret.
type Head struct {
	Counter uint64
	Tag     [16]byte
}

// String encodes a Head as "counter:tag in hex".
func (h Head) String() string {
	return strconv.FormatUint(h.Counter, 10) + ":" + hex.EncodeToString(h.Tag[:])
}

var errHead = errors.New("vault: malformed head")

// ParseHead reads what Head.String wrote.
func ParseHead(s string) (Head, error) {
	var h Head
	c, t, ok := strings.Cut(strings.TrimSpace(s), ":")
	n, err := strconv.ParseUint(c, 10, 64)
	if !ok || err != nil || strconv.FormatUint(n, 10) != c {
		return h, errHead
	}
	b, err := hex.DecodeString(t)
	if err != nil || len(b) != len(h.Tag) || hex.EncodeToString(b) != t {
		return h, errHead
	}
	h.Counter = n
	copy(h.Tag[:], b)
	return h, nil
}

// publicHead is the Head of h.
func (k *keyring) publicHead(h *headState) Head {
	m := hmac.New(sha256.New, k.head)
	m.Write([]byte("seen\x00"))
	m.Write(h.encode())
	var out Head
	out.Counter = h.counter
	copy(out.Tag[:], m.Sum(nil))
	return out
}

// HeadStore remembers, for a device, the newest Head it has seen of each
// vault (by vault ID). The CLI keeps it in its config directory.
type HeadStore interface {
	SeenHead(vaultID string) (Head, bool, error)
	RememberHead(vaultID string, h Head) error
}

// RollbackError says that the file is older than (or another file than)
// the newest one this device has seen. It matches ErrRolledBack.
type RollbackError struct {
	// Seen is the head this device remembers; Found the file's (zero
	// with NoHead, for a file without an authenticated head).
	Seen, Found Head
	NoHead      bool
}

func (e *RollbackError) Error() string {
	switch {
	case e.NoHead:
		return fmt.Sprintf("the vault file has no authenticated head (an older format), but this device has seen its head %d: the file was replaced by an older copy", e.Seen.Counter)
	case e.Found.Counter < e.Seen.Counter:
		return fmt.Sprintf("the vault file is older than the one this device last saw: its head is at write %d, this device saw write %d", e.Found.Counter, e.Seen.Counter)
	}
	return fmt.Sprintf("the vault file is not the one this device last saw: both are at write %d, with different contents", e.Found.Counter)
}

// Is makes a RollbackError match ErrRolledBack.
func (e *RollbackError) Is(target error) bool { return target == ErrRolledBack }

// compareSeen returns a RollbackError if found is older than seen.
func compareSeen(seen, found Head, noHead bool) error {
	switch {
	case noHead:
		return &RollbackError{Seen: seen, NoHead: true}
	case found.Counter < seen.Counter:
		return &RollbackError{Seen: seen, Found: found}
	case found.Counter == seen.Counter && subtle.ConstantTimeCompare(found.Tag[:], seen.Tag[:]) != 1:
		return &RollbackError{Seen: seen, Found: found}
	}
	return nil
}

// Head returns the vault's current head, and false for a vault without
// one (format 1 or 2 opened read-only).
func (v *Vault) Head() (Head, bool) {
	var out Head
	var ok bool
	v.view(func(tx kv.Tx) error {
		h, err := loadHead(tx, v.keys)
		if err == nil && h != nil {
			out, ok = v.keys.publicHead(h), true
		}
		return nil
	})
	return out, ok
}

// headToCheck is the head to check the values against: nil and no error
// for a vault of an older format, which has none; an error when it is
// missing (or does not open) from a vault that has one.
func (v *Vault) headToCheck(tx kv.Tx) (*headState, error) {
	h, err := loadHead(tx, v.keys)
	if err != nil {
		return nil, err
	}
	if h == nil && v.format >= 3 {
		return nil, tampered("the head is missing")
	}
	return h, nil
}

// Verify checks every value the head covers against it: a scan of the
// whole file that unseals nothing (Check does more). Once it has passed,
// it passes at once for as long as the vault stays open: a file's lock
// leaves this process the only writer, and in a store every other Vault
// that writes keeps the head up to date as this one does (someone
// without the key who changes the store after the check is found by
// Check, and for each record read by its check against the listing).
// Listings by kind call it, so that a selection never trusts a value put
// back from an older copy.
func (v *Vault) Verify() error {
	if v.verified.Load() {
		return nil
	}
	err := v.view(func(tx kv.Tx) error {
		h, err := v.headToCheck(tx)
		if h == nil {
			return err
		}
		scan := v.scanTrimmer()
		if bad := verifyHeadTx(tx, v.keys, h, headBuckets, func(n int) { scan.read(tx, n) }); len(bad) > 0 {
			return tampered(strings.Join(bad, "; "))
		}
		return nil
	})
	if err == nil {
		v.verified.Store(true)
	}
	return err
}

// recordsScan accumulates the records' total during a full scan (buildMeta,
// List), so that the scan verifies the head without a second pass.
type recordsScan struct {
	keys  *keyring
	total [32]byte
}

func (s *recordsScan) add(key, sealed []byte) {
	e := s.keys.element(bucketRecords, key, sealed)
	subtle.XORBytes(s.total[:], s.total[:], e[:])
}

// check compares the scan's total with the head read in the same
// transaction, and marks the vault verified when the other buckets are
// known to match as well.
func (v *Vault) checkScan(tx kv.Tx, s *recordsScan) error {
	h, err := v.headToCheck(tx)
	if h == nil {
		return err
	}
	if s.total != h.total(bucketRecords) {
		return tampered("records do not match the head: a value was put back, removed or added without the key")
	}
	if v.tamper == nil && scanCompletesVerify() {
		// Open checked the other buckets; since then only this
		// process wrote.
		v.verified.Store(true)
	}
	return nil
}

// openChecked are the buckets Open checks against the head.
var openChecked = []byte{bucketSlots, bucketSettings, bucketDicts}

// scanCompletesVerify reports whether Open's checks and a scan of the
// records together cover every bucket of the head (not so once a bucket
// is added that neither reads).
func scanCompletesVerify() bool {
	for _, b := range headBuckets {
		if b != bucketRecords && !slices.Contains(openChecked, b) {
			return false
		}
	}
	return true
}

// verifyOpen is what Open checks: the head opens, the change sequence
// and the small buckets (key slots, settings) match it. The records are
// left to full scans. It returns the problems found (for Check) and the
// head, nil for a vault of an older format.
func (v *Vault) verifyOpen() (*headState, []string, error) {
	var h *headState
	var bad []string
	err := v.view(func(tx kv.Tx) error {
		var err error
		if h, err = loadHead(tx, v.keys); err != nil {
			if errors.Is(err, ErrCorrupt) {
				bad = append(bad, "the head does not open: "+err.Error())
				return nil
			}
			return err
		}
		if h == nil {
			if v.format >= 3 {
				bad = append(bad, "the head is missing")
			}
			return nil
		}
		bad = verifyHeadTx(tx, v.keys, h, openChecked, nil)
		return nil
	})
	return h, bad, err
}

// compareSeen checks the file's head against the newest this device has
// seen of the vault.
func (v *Vault) compareSeen(store HeadStore, accept bool) error {
	seen, ok, err := store.SeenHead(v.ID())
	if err != nil {
		return fmt.Errorf("vault: reading the heads this device has seen: %w", err)
	}
	if !ok || accept {
		return nil
	}
	v.remembered = seen // nothing to write while the file stays at it
	found, ok := v.fileHead()
	return compareSeen(seen, found, !ok)
}

// fileHead returns the public head in the file, without v.mu (Close holds
// it).
func (v *Vault) fileHead() (Head, bool) {
	var out Head
	var ok bool
	v.db.View(func(tx kv.Tx) error {
		if h, err := loadHead(tx, v.keys); err == nil && h != nil {
			out, ok = v.keys.publicHead(h), true
		}
		return nil
	})
	return out, ok
}

// rememberHead tells the device's HeadStore the vault's current head.
// A failure to remember only weakens the next open's check, so it is not
// an error of the command that opened the vault.
func (v *Vault) rememberHead() {
	h, ok := v.fileHead()
	if !ok || h == v.remembered {
		return
	}
	if err := v.heads.RememberHead(v.ID(), h); err == nil {
		v.remembered = h
	}
}

// headProblems checks the whole file against its head, for Check.
func (v *Vault) headProblems(tx kv.Tx) []string {
	h, err := loadHead(tx, v.keys)
	switch {
	case err != nil:
		return []string{"the authenticated head does not open: " + err.Error()}
	case h == nil && v.format >= 3:
		return []string{"the authenticated head is missing: " + ErrTampered.Error()}
	case h == nil:
		return nil // formats 1 and 2 have none; opening for writing adds it
	}
	scan := v.scanTrimmer()
	return verifyHeadTx(tx, v.keys, h, headBuckets, func(n int) { scan.read(tx, n) })
}

// AcceptHead makes the file's head match what the file holds now: for an
// owner who, told that the file does not match its head (ErrTampered),
// decides to keep it as it is. The values that did not match stay; only
// the proof that they were never replaced is gone.
func (v *Vault) AcceptHead() error {
	err := v.update(func(tx kv.Tx) error {
		counter := uint64(0)
		if h, err := loadHead(tx, v.keys); err == nil && h != nil {
			counter = h.counter
		}
		if v.wh != nil && v.wh.counter > counter {
			counter = v.wh.counter
		}
		h := computeHead(tx, v.keys, counter)
		if old, err := loadHead(tx, v.keys); err == nil && old != nil {
			h.list = old.list
		}
		if v.wh == nil {
			h.counter++
			return storeHead(tx, v.keys, h)
		}
		v.replaceHead(h)
		return nil
	})
	if err == nil {
		v.tamper = nil
		v.verified.Store(true)
	}
	return err
}
