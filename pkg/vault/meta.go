package vault

import (
	"bytes"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/phr-project/phr/pkg/kv"
	"github.com/phr-project/phr/pkg/record"
)

// The listing index: after unlock, the vault keeps in memory, for each
// record, the few facts a listing sorts and filters by (kind, clinical
// date, entry time, tombstone). It is built on the first listing that can
// use it (one pass that unseals every record, as any full listing does)
// and kept up to date by every write of this process, which is the only
// writer: bbolt's file lock keeps other processes out. With it, a listing
// with a limit unseals only the records it returns. It never touches
// disk.
type metaEntry struct {
	version       uint64
	id, kind      string
	date, created time.Time
	deleted       bool
}

type metaIndex struct {
	mu sync.Mutex
	m  map[string]metaEntry // by bbolt key; nil until built
	// recs caches unsealed records that listings returned, so that a
	// client paging through the newest records again does not unseal them
	// again. It is bounded (maxCachedRecords; when full it starts over),
	// lives only in memory while the vault is open, and every write drops
	// the entry it changes. The vault key is in memory for as long anyway.
	recs map[string]record.Record
}

// maxCachedRecords bounds the listing's record cache per open vault.
const maxCachedRecords = 1024

func (x *metaIndex) put(key []byte, e metaEntry) {
	x.mu.Lock()
	if x.m != nil {
		x.m[string(key)] = e
	}
	delete(x.recs, string(key))
	x.mu.Unlock()
}

// reset drops the index and the cache; the next listing rebuilds them.
func (x *metaIndex) reset() {
	x.mu.Lock()
	x.m = nil
	x.recs = nil
	x.mu.Unlock()
}

// cached returns a cached record.
func (x *metaIndex) cached(key string) (record.Record, bool) {
	x.mu.Lock()
	r, ok := x.recs[key]
	x.mu.Unlock()
	return r, ok
}

// cache keeps a record unsealed by a listing, unless a write changed it
// since the listing read it (its version no longer matches the index).
func (x *metaIndex) cache(key string, r record.Record) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.m == nil {
		return
	}
	if e, ok := x.m[key]; !ok || e.version != r.Version {
		return
	}
	if x.recs == nil || len(x.recs) >= maxCachedRecords {
		x.recs = make(map[string]record.Record, 64)
	}
	x.recs[key] = r
}

// build fills the index if it is not built yet.
func (v *Vault) buildMeta() error {
	v.meta.mu.Lock()
	built := v.meta.m != nil
	v.meta.mu.Unlock()
	if built {
		return nil
	}
	m := map[string]metaEntry{}
	err := v.view(func(tx kv.Tx) error {
		// One pass over every record: the plaintext and additional-data
		// buffers are reused and only the facts are decoded, so that the
		// heap does not grow with the vault beyond the index itself. The
		// pass also maps the whole file, but those pages are the page
		// cache's, which the kernel reclaims under pressure: dropping
		// them as the pass goes (as imports do, see trimTx) cut the
		// resident set of `phr list` on 300,000 records by 70% but made
		// it 1.7 times slower (4.5 s instead of 2.6), so it does not.
		//
		// The pass also checks the records against the authenticated
		// head (head.go), which costs one HMAC per record.
		var pt []byte
		ad := make([]byte, 0, 64)
		kinds := map[string]string{}
		scan := recordsScan{keys: v.keys}
		err := tx.Bucket([]byte{bucketRecords}).ForEach(func(k, sealed []byte) error {
			id := idOf(k)
			scan.add(k, sealed)
			var err error
			var version uint64
			if pt, version, err = v.keys.openInto(pt[:0], ad, bucketRecords, k, sealed); err != nil {
				return fmt.Errorf("record %s: %w", id, err)
			}
			e, err := decodeFacts(pt, id, kinds)
			if err != nil {
				return fmt.Errorf("record %s: %w: bad envelope", id, ErrCorrupt)
			}
			if version != 0 && version != e.version {
				return fmt.Errorf("record %s: %w: its version does not match its seal", id, ErrCorrupt)
			}
			m[string(k)] = e
			return nil
		})
		if err != nil {
			return err
		}
		return v.checkScan(tx, &scan)
	})
	if err != nil {
		return err
	}
	v.meta.mu.Lock()
	if v.meta.m == nil {
		v.meta.m = m
	}
	v.meta.mu.Unlock()
	return nil
}

// listFast answers a query without text or source filters and with a
// limit from the listing index: it sorts the index's facts and unseals
// only the records it returns. ok is false when the index cannot answer
// (a record it does not know): the caller then lists the slow way.
func (v *Vault) listFast(q Query) (out []metaCandidate, ok bool, err error) {
	if err := v.buildMeta(); err != nil {
		return nil, false, err
	}
	var keys [][]byte
	if len(q.Kinds) > 0 {
		err = v.view(func(tx kv.Tx) error {
			c := tx.Bucket([]byte{bucketIndex}).Cursor()
			seen := map[string]bool{}
			for _, kind := range q.Kinds {
				if seen[kind] {
					continue
				}
				seen[kind] = true
				prefix := v.keys.kindPrefix(kind)
				for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
					keys = append(keys, append([]byte(nil), k[len(prefix):]...))
				}
			}
			return nil
		})
		if err != nil {
			return nil, false, err
		}
	}
	v.meta.mu.Lock()
	if v.meta.m == nil {
		v.meta.mu.Unlock()
		return nil, false, nil
	}
	add := func(k string, e metaEntry) {
		if e.deleted && !q.IncludeDeleted {
			return
		}
		if !q.Since.IsZero() || !q.Until.IsZero() {
			if e.date.IsZero() || (!q.Since.IsZero() && e.date.Before(q.Since)) || (!q.Until.IsZero() && !e.date.Before(q.Until)) {
				return
			}
		}
		out = append(out, metaCandidate{key: k, e: e})
	}
	if keys != nil || len(q.Kinds) > 0 {
		// The kind index is not authenticated: a key copied under
		// another kind's prefix must not select the record. The kind
		// comes from the sealed envelope (the listing index's), and
		// each record is taken once.
		wanted := kindSet(q.Kinds)
		taken := make(map[string]bool, len(keys))
		for _, k := range keys {
			e, found := v.meta.m[string(k)]
			if !found {
				v.meta.mu.Unlock()
				return nil, false, nil
			}
			if !wanted[e.kind] || taken[string(k)] {
				continue
			}
			taken[string(k)] = true
			add(string(k), e)
		}
	} else {
		for k, e := range v.meta.m {
			add(k, e)
		}
	}
	v.meta.mu.Unlock()
	slices.SortFunc(out, func(a, b metaCandidate) int {
		return compareFacts(a.e.date, b.e.date, a.e.created, b.e.created, idOf([]byte(a.key)), idOf([]byte(b.key)), q.Oldest)
	})
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, true, nil
}

type metaCandidate struct {
	key string
	e   metaEntry
}

// compareFacts is the listing order: by clinical date (none last), entry
// time and ID; newest first unless oldest.
func compareFacts(da, db, ca, cb time.Time, ida, idb string, oldest bool) int {
	if da.IsZero() != db.IsZero() {
		if da.IsZero() {
			return 1
		}
		return -1
	}
	c := da.Compare(db)
	if c == 0 {
		c = ca.Compare(cb)
	}
	if c == 0 {
		switch {
		case ida < idb:
			c = -1
		case ida > idb:
			c = 1
		}
	}
	if !oldest {
		c = -c
	}
	return c
}
