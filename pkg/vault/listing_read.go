package vault

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/phr-project/phr/pkg/kv"
	"github.com/phr-project/phr/pkg/record"
)

// listView reads the listing index within one transaction: the tree and,
// over it, the changes of the delta segments.
type listView struct {
	v    *Vault
	tx   kv.Tx
	b    kv.Bucket
	meta *listMeta
	// over holds the IDs the segments changed: their entries in the tree
	// are out of date. adds are the segments' current entries, sorted.
	over    map[string]bool
	adds    []rawEntry
	addInfo []entryInfo
}

// listViewOf opens the listing index of the head h in tx.
func (v *Vault) listViewOf(tx kv.Tx, m *listMeta) (*listView, error) {
	lv := &listView{v: v, tx: tx, b: tx.Bucket([]byte{bucketListing}), meta: m}
	if lv.b == nil {
		return nil, fmt.Errorf("%w: no listing index", ErrCorrupt)
	}
	changes, err := v.readSegments(tx, lv.b, m)
	if err != nil {
		return nil, err
	}
	if len(changes) == 0 {
		return lv, nil
	}
	last := make(map[string]int, len(changes))
	for i := range changes {
		c := &changes[i]
		switch {
		case c.put != nil:
			last[c.put.key.id] = i
		case c.old != nil:
			last[c.old.id] = i
		}
	}
	lv.over = make(map[string]bool, len(last))
	idx := make([]int, 0, len(last))
	for id, i := range last {
		lv.over[id] = true
		if changes[i].put != nil {
			idx = append(idx, i)
		}
	}
	slices.SortFunc(idx, func(a, b int) int { return changes[a].put.key.compare(changes[b].put.key) })
	lv.adds, lv.addInfo = make([]rawEntry, len(idx)), make([]entryInfo, len(idx))
	for j, i := range idx {
		lv.adds[j], lv.addInfo[j] = *changes[i].put, changes[i].putIn
	}
	return lv, nil
}

// listing returns the listing index of the vault in tx (format 4), or
// nil for an older format.
func (v *Vault) listing(tx kv.Tx) (*listView, error) {
	if v.format < 4 {
		return nil, nil
	}
	h, err := loadHead(tx, v.keys)
	if err != nil {
		return nil, err
	}
	if h == nil || h.list == nil {
		return nil, tampered("the head is missing")
	}
	return v.listViewOf(tx, h.list)
}

// entryFilter is what a query asks of entries.
type entryFilter struct {
	kinds          []byte // bit set of kind numbers; nil: any
	noKinds        bool   // the query's kinds are none the vault has
	includeDeleted bool
	source         []byte // lower case; nil: any
}

func (f *entryFilter) accept(in *entryInfo) bool {
	if in.deleted && (!f.includeDeleted || f.kinds != nil) {
		return false
	}
	if f.kinds != nil && (in.kind/8 >= uint64(len(f.kinds)) || f.kinds[in.kind/8]&(1<<(in.kind%8)) == 0) {
		return false
	}
	if f.source != nil && !in.matchesSource(f.source) {
		return false
	}
	return true
}

// prune reports whether a subtree cannot hold an entry the filter takes.
func (f *entryFilter) prune(c *child) bool {
	if c.live == 0 && (!f.includeDeleted || f.kinds != nil) {
		return true
	}
	if f.kinds != nil {
		for i, x := range f.kinds {
			if i < len(c.kinds) && c.kinds[i]&x != 0 {
				return false
			}
		}
		return true
	}
	return false
}

// visitFn is called with each entry a walk takes; it returns false to
// stop the walk.
type visitFn func(e *rawEntry, in *entryInfo) (bool, error)

// walk visits, in order (ascending or not), the entries of the subtree at
// ref whose keys are in [lo, hi) (nil: unbounded) and that f takes.
func (lv *listView) walk(ref nodeRef, level uint64, asc bool, lo, hi *sortKey, f *entryFilter, fn visitFn) (bool, error) {
	n, err := lv.v.readNode(lv.tx, lv.b, ref, level)
	if err != nil {
		return false, err
	}
	if level == 0 {
		start, end := 0, len(n.entries)
		if lo != nil {
			start, _ = slices.BinarySearchFunc(n.entries, *lo, func(e rawEntry, t sortKey) int { return e.key.compare(t) })
		}
		if hi != nil {
			end, _ = slices.BinarySearchFunc(n.entries, *hi, func(e rawEntry, t sortKey) int { return e.key.compare(t) })
		}
		for j := range max(end-start, 0) {
			i := start + j
			if !asc {
				i = end - 1 - j
			}
			if lv.over[n.entries[i].key.id] || !f.accept(&n.infos[i]) {
				continue
			}
			if cont, err := fn(&n.entries[i], &n.infos[i]); !cont || err != nil {
				return cont, err
			}
		}
		return true, nil
	}
	cs := n.children
	// Child i holds the keys from its first up to the next child's
	// first: the children in [first, last] meet [lo, hi).
	first, last := 0, len(cs)-1
	if lo != nil {
		for first < last && cs[first+1].first.compare(*lo) <= 0 {
			first++
		}
	}
	if hi != nil {
		for last > first && cs[last].first.compare(*hi) >= 0 {
			last--
		}
		if last == 0 && len(cs) > 0 && cs[0].first.compare(*hi) >= 0 {
			return true, nil
		}
	}
	for j := 0; j <= last-first; j++ {
		i := first + j
		if !asc {
			i = last - j
		}
		if f.prune(&cs[i]) {
			continue
		}
		if cont, err := lv.walk(cs[i].ref, level-1, asc, lo, hi, f, fn); !cont || err != nil {
			return cont, err
		}
	}
	return true, nil
}

// walkRange visits the entries in [lo, hi) that f takes, the tree's and
// the segments' merged, in order.
func (lv *listView) walkRange(asc bool, lo, hi *sortKey, f *entryFilter, fn visitFn) (bool, error) {
	var adds []int
	for i := range lv.adds {
		k := lv.adds[i].key
		if (lo != nil && k.compare(*lo) < 0) || (hi != nil && k.compare(*hi) >= 0) || !f.accept(&lv.addInfo[i]) {
			continue
		}
		adds = append(adds, i)
	}
	if !asc {
		slices.Reverse(adds)
	}
	ai := 0
	before := func(a, b sortKey) bool {
		if asc {
			return a.compare(b) < 0
		}
		return a.compare(b) > 0
	}
	visit := func(e *rawEntry, in *entryInfo) (bool, error) {
		for ai < len(adds) && before(lv.adds[adds[ai]].key, e.key) {
			i := adds[ai]
			ai++
			if cont, err := fn(&lv.adds[i], &lv.addInfo[i]); !cont || err != nil {
				return cont, err
			}
		}
		return fn(e, in)
	}
	if lv.meta.root.num != 0 {
		if cont, err := lv.walk(lv.meta.root, lv.meta.height, asc, lo, hi, f, visit); !cont || err != nil {
			return cont, err
		}
	}
	for ; ai < len(adds); ai++ {
		i := adds[ai]
		if cont, err := fn(&lv.adds[i], &lv.addInfo[i]); !cont || err != nil {
			return cont, err
		}
	}
	return true, nil
}

// undatedStart is the first key of an undated entry: every dated key
// sorts before it.
var undatedStart = sortKey{csec: math.MinInt64}

// dateBound is the first key of entries dated at or after t.
func dateBound(sec int64, nsec int32) *sortKey {
	return &sortKey{dated: true, dsec: sec, dnsec: nsec, csec: math.MinInt64}
}

// filterOf turns a query into an entry filter and key bounds.
func (lv *listView) filterOf(q *Query) (f entryFilter, lo, hi *sortKey) {
	f.includeDeleted = q.IncludeDeleted
	if s := strings.ToLower(strings.TrimSpace(q.Source)); s != "" {
		f.source = []byte(s)
	}
	if len(q.Kinds) > 0 {
		f.kinds = []byte{}
		for _, k := range q.Kinds {
			if n, ok := lv.meta.kindNum[k]; ok {
				f.kinds = setKind(f.kinds, n)
			}
		}
		if len(f.kinds) == 0 {
			f.noKinds = true
		}
	}
	if !q.Since.IsZero() || !q.Until.IsZero() {
		hi = &undatedStart
		if !q.Since.IsZero() {
			lo = dateBound(q.Since.Unix(), int32(q.Since.Nanosecond()))
		}
		if !q.Until.IsZero() {
			hi = dateBound(q.Until.Unix(), int32(q.Until.Nanosecond()))
		}
	}
	return f, lo, hi
}

// each visits the entries q selects (but for its text and limit), in
// q's order, starting after the key after if it is not nil.
func (lv *listView) each(q *Query, after *sortKey, fn visitFn) error {
	f, lo, hi := lv.filterOf(q)
	if f.noKinds {
		return nil
	}
	if q.Oldest {
		if after != nil && (lo == nil || after.compare(*lo) >= 0) {
			next := *after
			next.id += "\x00" // the first key after it
			lo = &next
		}
		_, err := lv.walkRange(true, lo, hi, &f, fn)
		return err
	}
	// Newest first: the dated entries backwards, then the undated ones
	// backwards. A cursor among the dated entries bounds them and leaves
	// every undated one still to come; a cursor among the undated ones
	// says that every dated one was given.
	datedHi, undatedHi := hi, hi
	if datedHi == nil || datedHi.compare(undatedStart) > 0 {
		datedHi = &undatedStart
	}
	dated := lo == nil || lo.compare(undatedStart) < 0
	if after != nil {
		if after.compare(undatedStart) < 0 {
			if after.compare(*datedHi) < 0 {
				datedHi = after
			}
		} else {
			dated = false
			if undatedHi == nil || after.compare(*undatedHi) < 0 {
				undatedHi = after
			}
		}
	}
	if dated {
		cont, err := lv.walkRange(false, lo, datedHi, &f, fn)
		if !cont || err != nil {
			return err
		}
	}
	if undatedHi == nil || undatedHi.compare(undatedStart) > 0 {
		ulo := &undatedStart
		if lo != nil && lo.compare(undatedStart) > 0 {
			ulo = lo
		}
		_, err := lv.walkRange(false, ulo, undatedHi, &f, fn)
		return err
	}
	return nil
}

// Entries calls fn with the listing entries q selects, in q's order, at
// most q.Limit of them (0: all). Without a text query it unseals no
// record; with one it unseals each record it tests (the listing index
// holds no resource). It reads the records of a vault of an older
// format, which has no listing index.
func (v *Vault) Entries(q Query, fn func(Entry) error) error {
	_, err := v.entries(q, "", fn)
	return err
}

// EntriesAfter is Entries starting after the position a cursor names (""
// for the start), and returns the cursor of the last entry it gave
// ("" if it gave none). Cursors are opaque and sealed: they name a
// position in the listing without showing what is there.
func (v *Vault) EntriesAfter(q Query, cursor string, fn func(Entry) error) (string, error) {
	return v.entries(q, cursor, fn)
}

// eachUnlisted gives fn the records q selects from a vault of a format
// before 4, which has no listing index to page through (so no cursor).
func (v *Vault) eachUnlisted(q Query, cursor string, fn func(*record.Record) error) (string, error) {
	if cursor != "" {
		return "", errCursor
	}
	recs, err := v.List(q)
	if err != nil {
		return "", err
	}
	for i := range recs {
		if err := fn(&recs[i]); err != nil {
			return "", err
		}
	}
	return "", nil
}

func (v *Vault) entries(q Query, cursor string, fn func(Entry) error) (string, error) {
	if v.format < 4 {
		return v.eachUnlisted(q, cursor, func(r *record.Record) error { return fn(entryOf(r)) })
	}
	text := strings.ToLower(strings.TrimSpace(q.Text))
	return v.walkQuery(&q, cursor, 0, func(tx kv.Tx, rb kv.Bucket, lv *listView, e *rawEntry, in *entryInfo) (bool, error) {
		if text != "" && !containsFoldBytes(in.str(1), []byte(text)) {
			r, err := v.loadVersion(tx, rb, e.key.id, in.version)
			if err != nil {
				return false, err
			}
			if !resourceContains(r.Resource, text) {
				return false, nil
			}
		}
		ent, err := e.entry(lv.meta.kinds)
		if err != nil {
			return false, err
		}
		return true, fn(ent)
	})
}

// walkQuery walks the entries q selects after cursor ("" for the start)
// in one read transaction. take gives each to the caller and says whether
// it took it (a text or kind test may pass one over); the walk stops after
// q.Limit taken (0: none) and returns the sealed cursor of the last one
// taken ("" if none).
//
// With ahead > 0, take is to read each entry's record: the walk gathers
// up to ahead entries (no more than q.Limit still wants) and reads their
// records' values together (kv.GetMany: one statement on PostgreSQL where
// each Get is a round trip) before giving them to take one by one, with a
// records bucket that answers the entry's key from what was read.
func (v *Vault) walkQuery(q *Query, cursor string, ahead int, take func(tx kv.Tx, rb kv.Bucket, lv *listView, e *rawEntry, in *entryInfo) (bool, error)) (string, error) {
	var last *sortKey
	err := v.view(func(tx kv.Tx) error {
		lv, err := v.listing(tx)
		if err != nil {
			return err
		}
		var after *sortKey
		if cursor != "" {
			if after, err = v.openCursor(cursor); err != nil {
				return err
			}
		}
		rb := tx.Bucket([]byte{bucketRecords})
		n := 0
		scan := v.scanTrimmer()
		give := func(rb kv.Bucket, e *rawEntry, in *entryInfo) (bool, error) {
			scan.tick(tx)
			took, err := take(tx, rb, lv, e, in)
			if err != nil || !took {
				return err == nil, err
			}
			k := e.key
			last = &k
			n++
			return q.Limit <= 0 || n < q.Limit, nil
		}
		if ahead <= 0 {
			return lv.each(q, after, func(e *rawEntry, in *entryInfo) (bool, error) { return give(rb, e, in) })
		}
		type pending struct {
			e  *rawEntry
			in *entryInfo
		}
		var pend []pending
		flush := func() (bool, error) {
			defer func() { pend = pend[:0] }()
			keys := make([][]byte, len(pend))
			for i, p := range pend {
				keys[i] = keyOf(p.e.key.id)
			}
			read := &readAhead{bucket: rb, keys: keys, vals: kv.GetMany(rb, keys)}
			for i, p := range pend {
				read.at = i
				if cont, err := give(read, p.e, p.in); !cont || err != nil {
					return cont, err
				}
			}
			return true, nil
		}
		cont := true
		err = lv.each(q, after, func(e *rawEntry, in *entryInfo) (bool, error) {
			pend = append(pend, pending{e, in})
			want := ahead
			if q.Limit > 0 {
				want = min(want, q.Limit-n)
			}
			if len(pend) < want {
				return true, nil
			}
			cont, err = flush()
			return cont, err
		})
		if err != nil || !cont || len(pend) == 0 {
			return err
		}
		_, err = flush()
		return err
	})
	if err != nil || last == nil {
		return "", err
	}
	return v.sealCursor(*last), nil
}

// readAhead is a bucket whose Get answers the key being read (keys[at])
// from the values read ahead (kv.GetMany), and any other from the bucket.
type readAhead struct {
	bucket
	keys [][]byte
	vals [][]byte
	at   int
}

func (r *readAhead) Get(key []byte) []byte {
	if bytes.Equal(key, r.keys[r.at]) {
		return r.vals[r.at]
	}
	return r.bucket.Get(key)
}

// bucket names kv.Bucket as an embedded field (whose name would clash
// with the method Bucket).
type bucket = kv.Bucket

// eachAhead is how many records Each reads at once.
const eachAhead = 64

// Each calls fn with the records q selects, in q's order, at most
// q.Limit of them (0: all), one at a time: it unseals each record it
// gives (and, for a text query, each it tests), and holds no more than
// one unsealed in memory (the sealed values of the next few are read
// together, in one statement where the store is a database).
func (v *Vault) Each(q Query, fn func(record.Record) error) error {
	_, err := v.EachAfter(q, "", fn)
	return err
}

// EachAfter is Each starting after the position a cursor names ("" for
// the start); it returns the cursor of the last record it gave ("" if
// none). See EntriesAfter.
func (v *Vault) EachAfter(q Query, cursor string, fn func(record.Record) error) (string, error) {
	if v.format < 4 {
		return v.eachUnlisted(q, cursor, func(r *record.Record) error { return fn(*r) })
	}
	text := strings.ToLower(strings.TrimSpace(q.Text))
	wanted := kindSet(q.Kinds)
	return v.walkQuery(&q, cursor, eachAhead, func(tx kv.Tx, rb kv.Bucket, _ *listView, e *rawEntry, in *entryInfo) (bool, error) {
		r, err := v.loadVersion(tx, rb, e.key.id, in.version)
		if err != nil {
			return false, err
		}
		if len(wanted) > 0 && !wanted[r.Kind] {
			return false, nil // the record says otherwise: Check reports it
		}
		if text != "" && !containsFold(r.Display, text) && !resourceContains(r.Resource, text) {
			return false, nil
		}
		return true, fn(r)
	})
}

// loadVersion loads the record with the given ID and checks that it is
// the version the listing names: a record put back from an older copy of
// the file does not pass for the current one.
func (v *Vault) loadVersion(tx kv.Tx, rb kv.Bucket, id string, version uint64) (record.Record, error) {
	r, err := v.load(rb, keyOf(id))
	if err != nil {
		return r, err
	}
	if r.Version != version {
		return r, tampered(fmt.Sprintf("record %s is at version %d, the listing index names version %d", id, r.Version, version))
	}
	return r, nil
}

// Cursors: a position in the listing, sealed so that it shows nothing.
var errCursor = fmt.Errorf("not a cursor of this vault's listing")

// ErrCursor: a cursor that this vault did not give (or that names a
// position in an older format).
var ErrCursor = errCursor

const cursorKey = "cursor"

// Cursor returns the sealed cursor of a record's place in the listing,
// for EachAfter and EntriesAfter to resume after it.
func (v *Vault) Cursor(r *record.Record) string { return v.sealCursor(sortKeyOf(r)) }

// EntryCursor is Cursor for a listing entry.
func (v *Vault) EntryCursor(e *Entry) string { return v.sealCursor(keyOfEntry(e)) }

func (v *Vault) sealCursor(k sortKey) string {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return base64.RawURLEncoding.EncodeToString(v.keys.seal(bucketCursor, []byte(cursorKey), 1, appendSortKey(nil, k)))
}

func (v *Vault) openCursor(s string) (*sortKey, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, errCursor
	}
	pt, err := v.keys.open(bucketCursor, []byte(cursorKey), b)
	if err != nil {
		return nil, errCursor
	}
	d := decoder{b: pt}
	k := d.sortKey()
	if d.err || len(d.b) != 0 {
		return nil, errCursor
	}
	return &k, nil
}
