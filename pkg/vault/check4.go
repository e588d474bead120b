package vault

import (
	"bytes"
	"cmp"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"runtime"
	"slices"

	"github.com/phr-project/phr/pkg/kv"
	"github.com/phr-project/phr/pkg/record"
)

// Checking a vault of format 4, in bounded memory and in parallel.
//
// Each record is unsealed once (by a few workers) and compared with its
// listing entry and its change feed entry without holding either index
// in memory: both sides add a keyed hash of what they say about each
// record into a sum (multiset hashing, with a seed drawn for this check
// so that nobody can choose index entries that add up to the right sum),
// and the sums must be equal. Only when they are not does a second pass
// find which records are concerned. The dedup fingerprints and the
// identity index are checked to point at records that exist; that each
// record's content gives the fingerprints stored for it is checked by a
// deep check (CheckDeep), which parses every resource.

// CheckDeep is Check that also has bbolt check the file's pages, and
// recomputes every record's dedup fingerprint and identities from its
// content (it parses every resource: several times slower) and reports
// records missing from the dedup index or the identity index. Check of
// a vault before format 4 always does all of it.
func (v *Vault) CheckDeep(repair bool) (*CheckReport, error) {
	if v.format < 4 {
		return v.checkLegacy(repair)
	}
	return v.check4(repair, true)
}

// multisum is a sum of keyed hashes: order does not matter, and
// duplicates count.
type multisum struct {
	a, b uint64
	n    uint64
}

func (m *multisum) add(s *checkSeeds, data []byte) {
	m.a += maphash.Bytes(s.a, data)
	m.b += maphash.Bytes(s.b, data)
	m.n++
}

func (m *multisum) plus(o multisum) { m.a, m.b, m.n = m.a+o.a, m.b+o.b, m.n+o.n }

type checkSeeds struct{ a, b maphash.Seed }

// entryFacts is what a listing entry says about a record that the record
// says too, encoded for hashing.
func entryFacts(buf []byte, id string, version uint64, deleted bool, kind string, date, created sortKey, str func(i int) []byte) []byte {
	buf = append(buf[:0], id...)
	buf = binary.AppendUvarint(buf, version)
	if deleted {
		buf = append(buf, 1)
	} else {
		buf = append(buf, 0)
	}
	buf = append(buf, kind...)
	buf = append(buf, 0)
	buf = appendSortKey(buf, sortKey{dated: date.dated, dsec: date.dsec, dnsec: date.dnsec, csec: created.csec, cnsec: created.cnsec})
	for i := range 8 {
		if i == 2 || i == 3 { // the date as written and the negation come from the resource
			continue
		}
		s := str(i)
		buf = binary.AppendUvarint(buf, uint64(len(s)))
		buf = append(buf, s...)
	}
	return buf
}

func recordFacts(buf []byte, r *record.Record) []byte {
	k := sortKeyOf(r)
	p := &r.Provenance
	strs := [...]string{r.ResourceType, r.Display, "", "", p.Source(), p.Importer, p.File, p.Method}
	return entryFacts(buf, r.ID, r.Version, r.Deleted, r.Kind, k, k, func(i int) []byte { return []byte(strs[i]) })
}

// recordSums is what the pass over the records adds up.
type recordSums struct {
	listing, changes multisum
	total            [32]byte // the records' head total
	live, tombstones int
	problems         []Problem
	maxSeq           uint64
	// keys holds a keyed hash of every record's key, sorted once merged:
	// what the indexes point at is looked up in it, not in the file.
	keys []uint64
	// deep: the fingerprints and identities the records' content gives.
	wantFinger map[string]map[string]bool
	wantIdent  map[string]bool
	legacy     map[string]string
}

func (s *recordSums) merge(o *recordSums) {
	s.listing.plus(o.listing)
	s.changes.plus(o.changes)
	subtle.XORBytes(s.total[:], s.total[:], o.total[:])
	s.live += o.live
	s.tombstones += o.tombstones
	s.problems = append(s.problems, o.problems...)
	s.maxSeq = max(s.maxSeq, o.maxSeq)
	s.keys = append(s.keys, o.keys...)
	for k, m := range o.wantFinger {
		if s.wantFinger[k] == nil {
			s.wantFinger[k] = m
			continue
		}
		for r := range m {
			s.wantFinger[k][r] = true
		}
	}
	for k := range o.wantIdent {
		s.wantIdent[k] = true
	}
	for k, val := range o.legacy {
		s.legacy[k] = val
	}
}

// checkWorkers is how many goroutines unseal records during a check.
func checkWorkers() int { return max(1, min(runtime.GOMAXPROCS(0), 4)) }

// scanRecords unseals every record with a few workers and adds up what
// they say.
func (v *Vault) scanRecords(tx kv.Tx, seeds *checkSeeds, deep bool) (*recordSums, error) {
	// The workers reach tx only to load the dictionaries: load them
	// first, so that no worker reads tx while this goroutine walks it. A
	// bbolt read transaction bears concurrent reads, and there each record
	// a damaged dictionary leaves unopened is a problem of its own; in a
	// store (PostgreSQL: one connection) they are the check's error.
	if err := v.codec.load(tx, v.keys); err != nil && kv.BoltTx(tx) == nil {
		return nil, err
	}
	rb := tx.Bucket([]byte{bucketRecords})
	type kv struct{ k, v []byte }
	batches := make(chan []kv, 4)
	results := make(chan *recordSums)
	workers := checkWorkers()
	// The workers do not use tx (a PostgreSQL transaction is one
	// connection, busy with the reader): the dictionaries of this
	// snapshot are loaded here.
	if err := v.codec.refresh(tx, v.keys); err != nil {
		return nil, err
	}
	newSums := func() *recordSums {
		return &recordSums{wantFinger: map[string]map[string]bool{}, wantIdent: map[string]bool{}, legacy: map[string]string{}}
	}
	for range workers {
		go func() {
			s := newSums()
			var ad, buf, cbuf, dbuf []byte
			ad = make([]byte, 0, 64)
			for batch := range batches {
				for _, e := range batch {
					s.keys = append(s.keys, maphash.Bytes(seeds.a, e.k))
					el := v.keys.element(bucketRecords, e.k, e.v)
					subtle.XORBytes(s.total[:], s.total[:], el[:])
					id := idOf(e.k)
					pt, version, err := v.keys.openInto(buf[:0], ad, bucketRecords, e.k, e.v)
					if err == nil {
						buf = pt
						// The record lives for this iteration only:
						// its envelope is decompressed into a buffer
						// the next one reuses (an uncompressed one is
						// buf itself, which stays buf's).
						compressed := len(pt) > 0 && (pt[0] == plainS2 || pt[0] == plainZstd)
						if pt, err = v.decompress(nil, dbuf[:0], pt); err == nil && compressed && cap(pt) > cap(dbuf) {
							dbuf = pt
						}
					}
					var r record.Record
					if err == nil {
						r, err = decodeRecord(pt)
						if err == nil && (r.ID != id || (version != 0 && version != r.Version)) {
							err = fmt.Errorf("%w: bad envelope", ErrCorrupt)
						}
					}
					if err != nil {
						s.problems = append(s.problems, Problem{ID: id, What: "record does not open: " + err.Error()})
						continue
					}
					if r.Deleted {
						s.tombstones++
					} else {
						s.live++
					}
					cbuf = recordFacts(cbuf, &r)
					s.listing.add(seeds, cbuf)
					cbuf = append(binary.BigEndian.AppendUint64(cbuf[:0], r.Seq), e.k...)
					s.changes.add(seeds, cbuf)
					s.maxSeq = max(s.maxSeq, r.Seq)
					if deep {
						if fp := v.fingerprintOf(v.keys, &r); fp != nil {
							if s.wantFinger[string(fp)] == nil {
								s.wantFinger[string(fp)] = map[string]bool{}
							}
							s.wantFinger[string(fp)][string(e.k)] = true
							in, day := record.Fingerprint(&r)
							if v.fpLegacy.Load() {
								s.legacy[string(v.keys.fingerprint(in))] = string(fp)
							}
							if v.fpDay.Load() && day != nil {
								s.legacy[string(v.keys.fingerprintKey(in, day))] = string(fp)
							}
						}
						if !r.Deleted {
							for _, in := range record.Identities(&r) {
								s.wantIdent[string(append(v.keys.identityKey(in), e.k...))] = true
							}
						}
					}
				}
			}
			results <- s
		}()
	}
	// The reader copies each record out of the mapped file (workers never
	// read the mapping) and drops the pages it has passed now and then.
	const batchSize = 256
	scan := v.scanTrimmer()
	var arena []byte
	batch := make([]kv, 0, batchSize)
	c := rb.Cursor()
	for k, val := c.First(); k != nil; k, val = c.Next() {
		if arena == nil {
			arena = make([]byte, 0, 128<<10)
		}
		if len(arena)+len(k)+len(val) > cap(arena) {
			arena = make([]byte, 0, max(128<<10, len(k)+len(val)))
		}
		start := len(arena)
		arena = append(append(arena, k...), val...)
		batch = append(batch, kv{arena[start : start+len(k) : start+len(k)], arena[start+len(k) : len(arena) : len(arena)]})
		scan.tick(tx)
		if len(batch) == batchSize {
			batches <- batch
			batch = make([]kv, 0, batchSize)
		}
	}
	batches <- batch
	close(batches)
	total := newSums()
	for range workers {
		total.merge(<-results)
	}
	slices.Sort(total.keys)
	slices.SortFunc(total.problems, func(a, b Problem) int { return cmp.Compare(a.ID, b.ID) })
	return total, nil
}

// listingProblems walks the whole listing index (tree and segments) and
// checks its structure; it returns what its entries add up to.
func (v *Vault) listingProblems(tx kv.Tx, seeds *checkSeeds) (multisum, []Problem, error) {
	var sum multisum
	var probs []Problem
	h, err := loadHead(tx, v.keys)
	if err != nil || h == nil || h.list == nil {
		return sum, []Problem{{What: "the listing index has no root in the head", Repairable: true}}, nil
	}
	m := h.list
	b := tx.Bucket([]byte{bucketListing})
	reached := map[uint64]bool{}
	bad := func(what string) {
		probs = append(probs, Problem{What: "listing index: " + what, Repairable: true})
	}
	var buf []byte
	var live, deleted uint64
	add := func(e *rawEntry, in *entryInfo) {
		kind := ""
		if in.kind < uint64(len(m.kinds)) {
			kind = m.kinds[in.kind]
		} else {
			bad("an entry of an unknown kind")
		}
		buf = entryFacts(buf, e.key.id, in.version, in.deleted, kind, e.key, e.key, in.str)
		sum.add(seeds, buf)
		if in.deleted {
			deleted++
		} else {
			live++
		}
		if raw := string(in.str(2)); raw != "" {
			t, err := record.ParseDate(raw)
			if err != nil || !e.key.dated || t.Unix() != e.key.dsec || int32(t.Nanosecond()) != e.key.dnsec {
				probs = append(probs, Problem{ID: e.key.id, What: "listing entry: its date as written is not its date", Repairable: true})
			}
		}
	}
	// Entries the segments changed count as the segments say.
	changes, err := v.readSegments(tx, b, m)
	if err != nil {
		bad("segments: " + err.Error())
		return sum, probs, nil
	}
	last := map[string]*listChange{}
	for i := range changes {
		c := &changes[i]
		switch {
		case c.put != nil:
			last[c.put.key.id] = c
		case c.old != nil:
			last[c.old.id] = c
		}
	}
	for _, s := range m.segs {
		reached[s.num] = true
	}
	// The tree, node by node, checking what each parent says of its
	// children.
	scan := v.scanTrimmer()
	var walk func(ref nodeRef, level uint64, lo, hi *sortKey) (child, bool)
	walk = func(ref nodeRef, level uint64, lo, hi *sortKey) (child, bool) {
		scan.read(tx, len(b.Get(nodeKey(ref.num))))
		reached[ref.num] = true
		n, err := v.readNode(tx, b, ref, level)
		if err != nil {
			bad(fmt.Sprintf("node %d: %v", ref.num, err))
			return child{}, false
		}
		if level == 0 {
			for i := range n.entries {
				k := n.entries[i].key
				if (i > 0 && n.entries[i-1].key.compare(k) >= 0) || (lo != nil && k.compare(*lo) < 0) || (hi != nil && k.compare(*hi) >= 0) {
					bad(fmt.Sprintf("node %d is out of order", ref.num))
					break
				}
			}
			for i := range n.entries {
				if last[n.entries[i].key.id] == nil {
					add(&n.entries[i], &n.infos[i])
				}
			}
			return summarize(ref, n), true
		}
		ok := true
		for i, c := range n.children {
			next := hi
			if i+1 < len(n.children) {
				next = &n.children[i+1].first
			}
			got, good := walk(c.ref, level-1, &n.children[i].first, next)
			if !good {
				ok = false
				continue
			}
			if got.first.compare(c.first) != 0 || got.live != c.live || got.deleted != c.deleted || !bytes.Equal(bytes.TrimRight(got.kinds, "\x00"), bytes.TrimRight(c.kinds, "\x00")) {
				bad(fmt.Sprintf("node %d does not match what its parent says of it", c.ref.num))
			}
		}
		return summarize(ref, n), ok
	}
	if m.root.num != 0 {
		walk(m.root, m.height, nil, nil)
	}
	for _, c := range last {
		if c.put != nil {
			in := c.putIn
			add(c.put, &in)
		}
	}
	if live != m.live || deleted != m.deleted {
		bad(fmt.Sprintf("the head counts %d records and %d tombstones, the index holds %d and %d", m.live, m.deleted, live, deleted))
	}
	stray := 0
	b.ForEach(func(k, val []byte) error {
		scan.read(tx, len(k)+len(val))
		if len(k) != 8 || !reached[bytesNum(k)] {
			stray++
		}
		return nil
	})
	if stray > 0 {
		bad(fmt.Sprintf("%d values that no node names", stray))
	}
	return sum, probs, nil
}

// check4 is Check for a vault of format 4.
func (v *Vault) check4(repair, deep bool) (*CheckReport, error) {
	rep := &CheckReport{RolledBack: v.RolledBack()}
	seeds := &checkSeeds{maphash.MakeSeed(), maphash.MakeSeed()}
	var needRebuild, needRollback bool
	err := v.view(func(tx kv.Tx) error {
		// bbolt's own check of the file's pages, alongside the rest.
		// A deep check also has bbolt check the file's pages (every page
		// once reachable and never twice, keys in order): it reads the
		// whole file twice more, which doubles the check's time.
		structure := make(chan []string, 1)
		go func() {
			var out []string
			if deep {
				v.guardMapped(tx, func() {
					for err := range fileCheck(tx) {
						out = append(out, "file structure: "+err.Error())
					}
				})
			}
			structure <- out
		}()
		sums, err := v.scanRecords(tx, seeds, deep)
		if err != nil {
			return err
		}
		for _, what := range <-structure {
			rep.Problems = append(rep.Problems, Problem{What: what})
		}
		rep.Problems = append(rep.Problems, sums.problems...)
		rep.Records, rep.Tombstones = sums.live, sums.tombstones
		// The head: the records' total from the pass, the other buckets
		// computed here.
		h, err := loadHead(tx, v.keys)
		switch {
		case err != nil:
			rep.Problems = append(rep.Problems, Problem{What: "the authenticated head does not open: " + err.Error()})
		case h == nil:
			rep.Problems = append(rep.Problems, Problem{What: "the authenticated head is missing: " + ErrTampered.Error()})
		default:
			others := slices.DeleteFunc(slices.Clone(headBuckets), func(b byte) bool { return b == bucketRecords })
			// It reads whole buckets (the listing index is tens of
			// megabytes at a million records): the mapped pages it has
			// passed are dropped as it goes.
			scan := v.scanTrimmer()
			rep.Problems = append(rep.Problems, problemsOf(verifyHeadTx(tx, v.keys, h, others, func(n int) { scan.read(tx, n) }))...)
			if sums.total != h.total(bucketRecords) {
				rep.Problems = append(rep.Problems, Problem{What: bucketName(bucketRecords) + " do not match the head: a value was put back, removed or added without the key"})
			}
		}
		// The listing index.
		lsum, lprobs, err := v.listingProblems(tx, seeds)
		if err != nil {
			return err
		}
		rep.Problems = append(rep.Problems, lprobs...)
		if lsum != sums.listing {
			rep.Problems = append(rep.Problems, v.listingMismatch(tx, seeds)...)
		}
		// The changes feed.
		cb := tx.Bucket([]byte{bucketChanges})
		var csum multisum
		var cbuf []byte
		last := cb.Sequence()
		beyond := false
		scan := v.scanTrimmer()
		cb.ForEach(func(k, val []byte) error {
			cbuf = append(append(cbuf[:0], k...), val...)
			csum.add(seeds, cbuf)
			if len(k) != 8 || binary.BigEndian.Uint64(k) > last {
				beyond = true
			}
			scan.tick(tx)
			return nil
		})
		if beyond {
			rep.Problems = append(rep.Problems, Problem{What: "changes feed entry beyond the vault's sequence", Repairable: true})
		}
		if csum != sums.changes {
			rep.Problems = append(rep.Problems, v.changesMismatch(tx)...)
		}
		// The dedup fingerprints and the identity index point at records
		// (looked up among the hashes of the records' keys, not in the
		// file).
		isRecord := func(k []byte) bool {
			_, found := slices.BinarySearch(sums.keys, maphash.Bytes(seeds.a, k))
			return found
		}
		rb, fb := tx.Bucket([]byte{bucketRecords}), tx.Bucket([]byte{bucketFinger})
		fb.ForEach(func(k, val []byte) error {
			if !isRecord(val) {
				rep.Problems = append(rep.Problems, Problem{ID: idOf(val), What: "fingerprint of a record that does not exist", Repairable: true})
			}
			scan.tick(tx)
			return nil
		})
		if deep {
			rep.Problems = append(rep.Problems, v.fingerprintProblems(rb, fb, sums)...)
		}
		ib := tx.Bucket([]byte{bucketIdentity})
		ib.ForEach(func(k, _ []byte) error {
			if len(k) != identityKeyLen+16 || !isRecord(k[identityKeyLen:]) {
				rep.Problems = append(rep.Problems, Problem{What: "identity index entry of a record that does not exist", Repairable: true})
			}
			if deep {
				delete(sums.wantIdent, string(k))
			}
			scan.tick(tx)
			return nil
		})
		if deep && !v.fpScheme2.Load() {
			for k := range sums.wantIdent {
				rep.Problems = append(rep.Problems, Problem{ID: idOf([]byte(k[identityKeyLen:])), What: "record missing from the identity index", Repairable: true})
			}
		}
		rep.Problems = append(rep.Problems, v.historyProblems(tx, rb)...)
		for _, p := range rep.Problems {
			if p.Repairable {
				needRebuild = true
			}
		}
		marks, err := v.markProblems(tx, rep)
		needRollback = marks
		return err
	})
	if err != nil {
		return nil, err
	}
	return v.finishCheck(rep, repair, needRebuild, needRollback)
}

func problemsOf(whats []string) []Problem {
	var out []Problem
	for _, w := range whats {
		out = append(out, Problem{What: w})
	}
	return out
}

// listingMismatch finds which records the listing index misstates (the
// sums differed): it holds every entry's facts in memory, which a vault
// whose index is right never needs.
func (v *Vault) listingMismatch(tx kv.Tx, seeds *checkSeeds) []Problem {
	h, err := loadHead(tx, v.keys)
	if err != nil || h == nil || h.list == nil {
		return nil
	}
	lv, err := v.listViewOf(tx, h.list)
	if err != nil {
		return []Problem{{What: "listing index: " + err.Error(), Repairable: true}}
	}
	entries := map[string]uint64{}
	var buf []byte
	f := entryFilter{includeDeleted: true}
	lv.walkRange(true, nil, nil, &f, func(e *rawEntry, in *entryInfo) (bool, error) {
		kind := ""
		if in.kind < uint64(len(h.list.kinds)) {
			kind = h.list.kinds[in.kind]
		}
		buf = entryFacts(buf, e.key.id, in.version, in.deleted, kind, e.key, e.key, in.str)
		entries[e.key.id] = maphash.Bytes(seeds.a, buf)
		return true, nil
	})
	var out []Problem
	rb := tx.Bucket([]byte{bucketRecords})
	rb.ForEach(func(k, _ []byte) error {
		r, err := v.load(rb, k)
		if err != nil {
			return nil // reported already
		}
		got, ok := entries[r.ID]
		delete(entries, r.ID)
		switch {
		case !ok:
			out = append(out, Problem{ID: r.ID, What: "record missing from the listing index", Repairable: true})
		case got != maphash.Bytes(seeds.a, recordFacts(buf, &r)):
			out = append(out, Problem{ID: r.ID, What: "listing entry does not match its record", Repairable: true})
		}
		return nil
	})
	for id := range entries {
		out = append(out, Problem{ID: id, What: "listing entry of a record that does not exist", Repairable: true})
	}
	if len(out) == 0 {
		out = append(out, Problem{What: "the listing index does not match the records", Repairable: true})
	}
	return out
}

// changesMismatch finds which records the changes feed misstates.
func (v *Vault) changesMismatch(tx kv.Tx) []Problem {
	var out []Problem
	rb, cb := tx.Bucket([]byte{bucketRecords}), tx.Bucket([]byte{bucketChanges})
	seqOf := map[uint64]string{}
	rb.ForEach(func(k, _ []byte) error {
		r, err := v.load(rb, k)
		if err != nil {
			return nil
		}
		if other, dup := seqOf[r.Seq]; dup {
			out = append(out, Problem{ID: r.ID, What: fmt.Sprintf("shares change sequence %d with %s", r.Seq, idOf([]byte(other))), Repairable: true})
		}
		seqOf[r.Seq] = string(k)
		if got := cb.Get(seqKey(r.Seq)); !bytes.Equal(got, k) {
			out = append(out, Problem{ID: r.ID, What: "missing from the changes feed", Repairable: true})
		}
		return nil
	})
	cb.ForEach(func(k, val []byte) error {
		if len(k) == 8 && seqOf[binary.BigEndian.Uint64(k)] != string(val) {
			out = append(out, Problem{ID: idOf(val), What: fmt.Sprintf("stale changes feed entry %d", binary.BigEndian.Uint64(k)), Repairable: true})
		}
		return nil
	})
	return out
}

// fingerprintProblems compares the dedup index with the fingerprints the
// records' content gives (a deep check).
func (v *Vault) fingerprintProblems(rb, fb kv.Bucket, sums *recordSums) []Problem {
	var out []Problem
	fb.ForEach(func(k, val []byte) error {
		if nk, ok := sums.legacy[string(k)]; ok {
			k = []byte(nk)
		}
		want, ok := sums.wantFinger[string(k)]
		if ok && !want[string(val)] && !changedSince(v, rb, val) {
			out = append(out, Problem{ID: idOf(val), What: "fingerprint points to the wrong record", Repairable: true})
		}
		delete(sums.wantFinger, string(k))
		return nil
	})
	for _, keys := range sums.wantFinger {
		for key := range keys {
			if v.fpScheme2.Load() && v.hasLegacyFingerprint(rb, fb, []byte(key)) {
				continue
			}
			out = append(out, Problem{ID: idOf([]byte(key)), What: "record missing from the dedup fingerprints", Repairable: true})
			break
		}
	}
	return out
}

// historyProblems checks the earlier versions of records.
func (v *Vault) historyProblems(tx kv.Tx, rb kv.Bucket) []Problem {
	var out []Problem
	hb := tx.Bucket([]byte{bucketHistory})
	if hb == nil {
		return nil
	}
	scan := v.scanTrimmer()
	hb.ForEach(func(k, sealed []byte) error {
		scan.read(tx, len(k)+len(sealed))
		if len(k) != 16+8 || rb.Get(k[:16]) == nil {
			out = append(out, Problem{What: "earlier version of a record that does not exist", Repairable: true})
			return nil
		}
		id := idOf(k[:16])
		pt, _, err := v.openEnvelope(tx, bucketHistory, k, sealed)
		if err != nil {
			out = append(out, Problem{ID: id, What: "earlier version does not open: " + err.Error()})
			return nil
		}
		if r, err := decodeRecord(pt); err != nil || r.ID != id || r.Version != binary.BigEndian.Uint64(k[16:]) {
			out = append(out, Problem{ID: id, What: "earlier version: bad envelope"})
		}
		return nil
	})
	return out
}

// markProblems reports the markers of imports not rolled back; it
// returns whether there are any to roll back.
func (v *Vault) markProblems(tx kv.Tx, rep *CheckReport) (bool, error) {
	need := false
	rb, _, _, cb := v.buckets(tx)
	for _, m := range v.deadImportMarks(tx) {
		if m.err != nil {
			rep.Problems = append(rep.Problems, Problem{What: "import marker does not open: " + m.err.Error()})
			continue
		}
		ids, err := v.importIDsTx(rb, cb, m.since, m.sha, true)
		if err != nil {
			return need, err
		}
		rep.Problems = append(rep.Problems, Problem{What: fmt.Sprintf("interrupted import of %d records not rolled back yet (opening the vault for writing rolls it back)", len(ids)), Repairable: true})
		need = true
	}
	return need, nil
}

// finishCheck repairs what it may.
func (v *Vault) finishCheck(rep *CheckReport, repair, needRebuild, needRollback bool) (*CheckReport, error) {
	if repair && needRollback {
		n, err := v.rollBackInterrupted()
		if err != nil {
			return rep, err
		}
		rep.RolledBack = v.RolledBack()
		rep.Repaired = n > 0
	}
	if repair && needRebuild {
		if err := v.rebuild(); err != nil {
			return rep, err
		}
		rep.Repaired = true
	}
	return rep, nil
}
