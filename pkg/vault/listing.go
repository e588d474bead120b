package vault

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/phr-project/phr/pkg/record"
)

// The listing index (format 4).
//
// For every record (tombstones too) the vault keeps what a listing shows
// and sorts by: an entry. Entries live in a B+tree of sealed nodes in the
// listing bucket, ordered as listings are (by clinical date, records
// without one last, then entry time and ID), so that the newest records,
// a date range or the records of a kind are found by reading a few nodes,
// and a listing prints what the entries say without unsealing a record.
// Every node is a sealed value under an 8-byte number that is never used
// again; a parent names each child with its number and version, and the
// root is named in the authenticated head (head.go), so a node put back
// from an older copy of the file does not open as the current one: a
// read of the tree is as authenticated as the head, however little of
// it is read.
//
// Writes do not rewrite the tree each time. A write transaction appends
// its changes to the tree as one sealed delta segment; readers apply the
// segments over the tree; and when the segments hold more than
// listMergeAt changes, the transaction merges them all into the tree.
// See listing_tree.go for the tree and docs/format.md for the bytes.

// Entry is what a listing shows of one record, from the listing index.
type Entry struct {
	ID           string
	Kind         string
	ResourceType string
	Display      string
	// Date is the record's clinical date (record.Record.Date), the
	// instant listings sort and filter by; zero for none.
	Date time.Time
	// WhenRaw is the date as its source wrote it (record.When's Raw).
	WhenRaw string
	// Created is when the record entered the vault.
	Created  time.Time
	Version  uint64
	Deleted  bool
	Negation string
	// Source is the provenance's short name (record.Provenance.Source);
	// Importer, File and Method are the provenance's, for --source.
	Source, Importer, File, Method string
}

// When returns the entry's date as written.
func (e *Entry) When() record.When {
	if e.WhenRaw == "" {
		return record.When{}
	}
	w, err := record.ParseWhenValue(e.WhenRaw)
	if err != nil {
		return record.When{}
	}
	return w
}

// Summary is the record's listing shape, as record.Record.Summarize
// gives it.
func (e *Entry) Summary() record.Summary {
	return record.Summary{ID: e.ID, Kind: e.Kind, ResourceType: e.ResourceType, Date: e.WhenRaw, Display: e.Display,
		Source: e.Source, Version: e.Version, Negation: e.Negation}
}

// entryOf is the listing entry of a record. It parses the resource for
// the date as written unless the record is a tombstone.
func entryOf(r *record.Record) Entry {
	e := Entry{ID: r.ID, Kind: r.Kind, ResourceType: r.ResourceType, Display: r.Display, Date: r.Date, Created: r.CreatedAt,
		Version: r.Version, Deleted: r.Deleted, Source: r.Provenance.Source(), Importer: r.Provenance.Importer,
		File: r.Provenance.File, Method: r.Provenance.Method}
	if !r.Deleted {
		e.WhenRaw = whenRaw(r)
		e.Negation = r.Negation()
	}
	return e
}

// whenRaw is r.When().Raw, found without decoding the resource when it
// can be: the date as written is a string of the resource that denotes
// r.Date (which the same fields gave), so if exactly one string of the
// resource's JSON does, it is that one. Otherwise (no date, no such
// string, or several written differently) the resource is decoded.
func whenRaw(r *record.Record) string {
	if r.Date.IsZero() {
		return r.When().Raw
	}
	found := ""
	b := r.Resource
	for i := 0; i < len(b); i++ {
		if b[i] != '"' {
			continue
		}
		end := i + 1
		for end < len(b) && b[end] != '"' && b[end] != '\\' {
			end++
		}
		if end >= len(b) || b[end] == '\\' {
			return r.When().Raw // an escape: leave it to the decoder
		}
		s := b[i+1 : end]
		i = end
		if len(s) < 4 || len(s) > 35 || s[0] < '0' || s[0] > '9' {
			continue
		}
		t, err := record.ParseDate(string(s))
		if err != nil || !t.Equal(r.Date) {
			continue
		}
		switch {
		case found == "":
			found = string(s)
		case found != string(s):
			return r.When().Raw
		}
	}
	if found == "" {
		return r.When().Raw
	}
	return found
}

// sortKey is where an entry sits in the listing order.
type sortKey struct {
	dated        bool
	dsec, csec   int64
	dnsec, cnsec int32
	id           string
}

func keyOfEntry(e *Entry) sortKey {
	k := sortKey{id: e.ID}
	if !e.Date.IsZero() {
		k.dated, k.dsec, k.dnsec = true, e.Date.Unix(), int32(e.Date.Nanosecond())
	}
	if !e.Created.IsZero() {
		k.csec, k.cnsec = e.Created.Unix(), int32(e.Created.Nanosecond())
	}
	return k
}

// sortKeyOf is the sort key a record's entry has.
func sortKeyOf(r *record.Record) sortKey {
	return keyOfEntry(&Entry{ID: r.ID, Date: r.Date, Created: r.CreatedAt})
}

// compare orders keys ascending: dated entries by date, entry time and
// ID, then undated ones by entry time and ID. Listings read it forwards
// (oldest first) or backwards (newest first); either way undated records
// come after dated ones, so a newest-first listing reads the dated part
// backwards and then the undated part backwards.
func (a sortKey) compare(b sortKey) int {
	if a.dated != b.dated {
		if a.dated {
			return -1
		}
		return 1
	}
	if a.dated {
		if c := cmpTime(a.dsec, a.dnsec, b.dsec, b.dnsec); c != 0 {
			return c
		}
	}
	if c := cmpTime(a.csec, a.cnsec, b.csec, b.cnsec); c != 0 {
		return c
	}
	return cmp.Compare(a.id, b.id)
}

func cmpTime(as int64, an int32, bs int64, bn int32) int {
	switch {
	case as < bs:
		return -1
	case as > bs:
		return 1
	case an < bn:
		return -1
	case an > bn:
		return 1
	}
	return 0
}

// appendSortKey encodes a sort key.
func appendSortKey(b []byte, k sortKey) []byte {
	var flags uint64
	if k.dated {
		flags |= 1
	}
	b = binary.AppendUvarint(b, flags)
	if k.dated {
		b = binary.AppendVarint(b, k.dsec)
		b = binary.AppendUvarint(b, uint64(k.dnsec))
	}
	b = binary.AppendVarint(b, k.csec)
	b = binary.AppendUvarint(b, uint64(k.cnsec))
	b = binary.AppendUvarint(b, uint64(len(k.id)))
	return append(b, k.id...)
}

// decoder reads the encodings of the listing index; the first error
// sticks.
type decoder struct {
	b   []byte
	err bool
}

func (d *decoder) uvarint() uint64 {
	if d.err {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err || n > uint64(len(d.b)) {
		d.err = true
		return nil
	}
	out := d.b[:n:n]
	d.b = d.b[n:]
	return out
}

func (d *decoder) nsec() int32 {
	v := d.uvarint()
	if v >= 1e9 {
		d.err = true
	}
	return int32(v)
}

func (d *decoder) sortKey() sortKey {
	var k sortKey
	flags := d.uvarint()
	if flags > 1 {
		d.err = true
	}
	if flags&1 != 0 {
		k.dated = true
		k.dsec, k.dnsec = d.varint(), d.nsec()
	}
	k.csec, k.cnsec = d.varint(), d.nsec()
	k.id = string(d.bytes())
	return k
}

// An entry is encoded as its sort key, then:
//
//	uvarint flags (1 deleted) ‖ uvarint version ‖ uvarint kind (its number in the kind table)
//	8 × (uvarint length ‖ bytes): resourceType, display, date as written, negation, source, importer, file, method
//
// Inside the tree entries are kept encoded; rawEntry holds one with its
// key decoded, for ordering.
type rawEntry struct {
	key sortKey
	b   []byte // the whole encoding
}

const entryDeleted = 1

// encodeEntry appends e's encoding to b; kind is e.Kind's number.
func encodeEntry(b []byte, e *Entry, kind uint64) []byte {
	b = appendSortKey(b, keyOfEntry(e))
	var flags uint64
	if e.Deleted {
		flags |= entryDeleted
	}
	b = binary.AppendUvarint(b, flags)
	b = binary.AppendUvarint(b, e.Version)
	b = binary.AppendUvarint(b, kind)
	for _, s := range [...]string{e.ResourceType, e.Display, e.WhenRaw, e.Negation, e.Source, e.Importer, e.File, e.Method} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

// entryInfo is an encoded entry's fields after its key; its strings are
// kept as where they are in the encoding (no copies: a listing decodes
// thousands of entries to show a few).
type entryInfo struct {
	deleted bool
	version uint64
	kind    uint64
	b       []byte       // the entry's encoding
	off     [8][2]uint32 // each string's start and end in b
}

// str returns string i: resourceType, display, date as written,
// negation, source, importer, file, method.
func (in *entryInfo) str(i int) []byte { return in.b[in.off[i][0]:in.off[i][1]:in.off[i][1]] }

// entryInfo reads the fields after an entry's key; start is where the
// entry began in d's buffer.
func (d *decoder) entryInfo(start []byte) entryInfo {
	var in entryInfo
	flags := d.uvarint()
	if flags > entryDeleted {
		d.err = true
	}
	in.deleted = flags&entryDeleted != 0
	in.version = d.uvarint()
	in.kind = d.uvarint()
	for i := range in.off {
		s := d.bytes()
		end := len(start) - len(d.b)
		in.off[i] = [2]uint32{uint32(end - len(s)), uint32(end)}
	}
	in.b = start[: len(start)-len(d.b) : len(start)-len(d.b)]
	return in
}

// readEntry reads one encoded entry from d.
func (d *decoder) readEntry() (rawEntry, entryInfo) {
	start := d.b
	k := d.sortKey()
	in := d.entryInfo(start)
	if d.err {
		return rawEntry{}, in
	}
	return rawEntry{key: k, b: in.b}, in
}

// info decodes the fields of an entry after its key.
func (r *rawEntry) info() (entryInfo, error) {
	d := decoder{b: r.b}
	d.sortKey()
	in := d.entryInfo(r.b)
	if d.err || len(d.b) != 0 {
		return in, fmt.Errorf("%w: malformed listing entry", ErrCorrupt)
	}
	return in, nil
}

// entry decodes r into an Entry; kinds is the kind table.
func (r *rawEntry) entry(kinds []string) (Entry, error) {
	in, err := r.info()
	if err != nil {
		return Entry{}, err
	}
	if in.kind >= uint64(len(kinds)) {
		return Entry{}, fmt.Errorf("%w: listing entry of an unknown kind", ErrCorrupt)
	}
	e := Entry{ID: r.key.id, Kind: kinds[in.kind], Version: in.version, Deleted: in.deleted}
	if r.key.dated {
		e.Date = time.Unix(r.key.dsec, int64(r.key.dnsec)).UTC()
	}
	if r.key.csec != 0 || r.key.cnsec != 0 {
		e.Created = time.Unix(r.key.csec, int64(r.key.cnsec)).UTC()
	}
	for i, p := range [...]*string{&e.ResourceType, &e.Display, &e.WhenRaw, &e.Negation, &e.Source, &e.Importer, &e.File, &e.Method} {
		*p = string(in.str(i))
	}
	return e, nil
}

// entryMatches reports whether an entry's source strings match a --source
// filter (lower case), as Query.Source does for records.
func (in *entryInfo) matchesSource(lowerSub []byte) bool {
	for _, i := range []int{4, 5, 6, 7} { // source, importer, file, method
		if containsFoldBytes(in.str(i), lowerSub) {
			return true
		}
	}
	return false
}

func containsFoldBytes(s, lowerSub []byte) bool {
	if len(lowerSub) == 0 {
		return true
	}
	return bytes.Contains(bytes.ToLower(s), lowerSub)
}

// listPut notes, in the running write transaction, that a record's entry
// changed: old is the record as it was (nil: it was not there), nr as it
// is now (nil: it is gone). The transaction writes the changes when it
// commits (commitListing). Vaults before format 4 have no listing index.
func (v *Vault) listPut(old, nr *record.Record) {
	h := v.wh
	if h == nil || h.list == nil {
		return
	}
	var c listChange
	if old != nil {
		k := sortKeyOf(old)
		c.old, c.oldDel = &k, old.Deleted
		switch {
		case old.Deleted && h.list.deleted > 0:
			h.list.deleted--
		case !old.Deleted && h.list.live > 0:
			h.list.live--
		}
	}
	if nr != nil {
		e := entryOf(nr)
		c.put, c.putIn = newRawEntry(&e, h.list.kind(e.Kind))
		if nr.Deleted {
			h.list.deleted++
		} else {
			h.list.live++
		}
	}
	v.wl = append(v.wl, c)
}

// newRawEntry encodes e (whose kind has the number kind).
func newRawEntry(e *Entry, kind uint64) (*rawEntry, entryInfo) {
	d := decoder{b: encodeEntry(nil, e, kind)}
	re, in := d.readEntry()
	return &re, in
}
