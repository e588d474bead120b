package vault

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/phr-project/phr/pkg/kv"
	"github.com/phr-project/phr/pkg/record"
)

// AddResult says what Add did with one record.
type AddResult struct {
	// ID is the record's ID: the new record's, for a duplicate the ID of
	// the record already in the vault, and for an update the ID of the
	// record it updated.
	ID string
	// Duplicate is true when the vault already held the record (same
	// source and clinical content), so nothing was written.
	Duplicate bool
	// Updated is true when the record was a new version of a record in
	// the vault (same source, named alike, other content, from another
	// file): that record now says what the new one says, and its earlier
	// version is in its history.
	Updated bool
}

// Add stores new records in one transaction: all of them or none. Records
// whose fingerprint (record.FingerprintInput: source and clinical content)
// is already in the vault, or earlier in the same batch, are not written
// and come back as duplicates, except that a file's equal resources that
// it tells apart by id are each kept once (see occurrences). A record that
// its source names like one in the vault (record.Identities), about the
// same thing, but that says something else and comes from another file
// replaces that record as its new version (see versions.go). Add fills in
// derived fields, times and versions, and IDs: a record without one, and
// an imported record (whose ID only the importer has seen), gets an ID of
// this vault's run (NewID), written back into recs. Other records
// (self-entered ones, whose resource carries their ID) keep theirs.
func (v *Vault) Add(recs []record.Record) ([]AddResult, error) {
	return v.add(recs, false, nil, nil)
}

// DryAdd says what Add would do with recs (which are new, which are
// duplicates, which update a record) without writing anything.
func (v *Vault) DryAdd(recs []record.Record) ([]AddResult, error) {
	return v.add(recs, true, nil, nil)
}

// add writes (or, dry, checks) recs in one transaction. If also is not
// nil it runs in the same write transaction, before the records, with the
// vault's change sequence as it was before them.
//
// im is the Import the batch belongs to, nil for none. An Import keeps,
// over its batches, the resources of each file seen so far with content
// the vault holds (see occurrences), the records to train compression
// dictionaries on (compress.go), and the fingerprints of the records it
// added that it has not written yet (pendingFingerprints).
func (v *Vault) add(recs []record.Record, dry bool, im *Import, also func(tx kv.Tx, seq uint64) error) ([]AddResult, error) {
	var occ occurrences
	var samples dictSamples
	if im != nil {
		occ, samples = im.occurrences(), im.dictSamples()
	}
	now := v.now().UTC()
	prep := make([]prepared, len(recs))
	// A large batch's IDs start a run of their own (see NewID): a run
	// that went on into the next transaction would have it rewrite the
	// pages this one wrote. Small batches (readings) take the vault's.
	ids := &v.ids
	if len(recs) >= ownRunFrom {
		ids = new(record.IDRun)
	}
	for i := range recs {
		r := &recs[i]
		if r.ID == "" || r.Provenance.Method == record.MethodImported {
			r.ID = ids.Next()
		} else if !record.ValidID(r.ID) {
			return nil, fmt.Errorf("record %d: invalid record ID", i)
		}
		if len(r.Resource) == 0 {
			return nil, fmt.Errorf("record %d: no resource", i)
		}
		if r.Kind == "" || r.ResourceType == "" {
			if err := r.Derive(); err != nil {
				return nil, fmt.Errorf("record %d: %w", i, err)
			}
		}
		if r.CreatedAt.IsZero() {
			r.CreatedAt = now
		}
		r.UpdatedAt = now
		r.Version = 1
		r.Deleted = false
		prep[i] = prepared{id: keyOf(r.ID), rec: r, dupIdx: -1}
		prep[i].fpIn, prep[i].fpDay = record.Fingerprint(r)
		prep[i].fpCl = v.cluster(r, prep[i].fpDay)
	}
	results := make([]AddResult, len(recs))
	var updated []record.Record
	txn := v.update
	if dry {
		txn = v.view
	}
	err := txn(func(tx kv.Tx) error {
		updated = updated[:0]
		rb, xb, fb, cb := v.buckets(tx)
		ib := tx.Bucket([]byte{bucketIdentity})
		packFull(rb, xb, cb)
		if occ == nil {
			occ = occurrences{}
		}
		seq := cb.Sequence()
		if also != nil && !dry {
			if err := also(tx, seq); err != nil {
				return err
			}
		}
		if !dry && v.format >= 4 {
			if err := v.sampleBatch(tx, prep, samples); err != nil {
				return err
			}
		}

		ids := make([][]byte, len(prep))
		for i := range prep {
			ids[i] = prep[i].id
		}
		kv.Prefetch(rb, ids) // each is checked for being in use below
		claimed, err := v.decideDuplicates(fb, rb, prep, occ)
		if err != nil {
			return err
		}
		// dryUpdated: in a dry run, the records an earlier record of the
		// batch would have updated.
		dryUpdated := map[string]bool{}
		for i := range prep {
			if i%trimInTx == trimInTx-1 {
				v.trimTx(tx)
			}
			p := &prep[i]
			results[i] = AddResult{ID: p.rec.ID}
			switch {
			case p.dupKey != nil:
				results[i] = AddResult{ID: idOf(p.dupKey), Duplicate: true}
				continue
			case p.dupIdx >= 0:
				results[i] = AddResult{ID: results[p.dupIdx].ID, Duplicate: true}
				continue
			}
			if p.fp != nil && !p.twin {
				var fix func(key []byte)
				if !dry {
					fix = func(key []byte) { _ = fb.Put(p.fp, key) }
				}
				e, err := v.findEarlier(tx, p.rec, p.fpIn, claimed, fix)
				if err != nil {
					return err
				}
				switch {
				case e.dup != "":
					results[i] = AddResult{ID: e.dup, Duplicate: true}
					continue
				case e.update != nil && dry:
					if dryUpdated[e.update.ID] {
						break // a record of this batch updated it: both kept
					}
					dryUpdated[e.update.ID] = true
					results[i] = AddResult{ID: e.update.ID, Updated: true}
					continue
				case e.update != nil:
					nr, err := v.replaceVersion(tx, e.update, p.rec, seq+1)
					if err != nil {
						return err
					}
					seq++
					key := keyOf(nr.ID)
					if err := fb.Put(p.fp, key); err != nil {
						return err
					}
					if err := v.putIdentities(ib, record.Identities(p.rec), key); err != nil {
						return err
					}
					updated = append(updated, nr)
					results[i] = AddResult{ID: nr.ID, Updated: true}
					continue
				}
			}
			if rb.Get(p.id) != nil {
				return fmt.Errorf("record %d: ID already in use", i)
			}
			if dry {
				continue
			}
			seq++
			p.rec.Seq = seq
			pt, err := v.sealEnvelope(tx, p.rec)
			if err != nil {
				return err
			}
			if err := v.putSealedNew(rb, bucketRecords, p.id, p.rec.Version, pt); err != nil {
				return err
			}
			if xb != nil {
				if err := xb.Put(v.indexKey(p.rec.Kind, p.id), nil); err != nil {
					return err
				}
			}
			v.listPut(nil, p.rec)
			if p.fp != nil {
				switch {
				case im != nil && v.format >= 4 && v.path != "" && v.deferFingerprint(im, p.fp, p.id):
					// Only a vault file of its own defers them: in a
					// store, other Vaults would not find them.
				case fb.Get(p.fp) == nil:
					if err := fb.Put(p.fp, p.id); err != nil {
						return err
					}
				}
				for _, k := range p.extra {
					if err := fb.Put(k, p.id); err != nil {
						return err
					}
				}
				if err := v.putIdentities(ib, record.Identities(p.rec), p.id); err != nil {
					return err
				}
			}
			if err := cb.Put(seqKey(seq), p.id); err != nil {
				return err
			}
		}
		if dry {
			return nil
		}
		if im != nil && (im.last || v.pendingFingerprints(im) >= fpFlushAt) {
			if err := v.flushFingerprints(fb, im); err != nil {
				return err
			}
		}
		// An import ends with its changes merged into the listing's
		// tree: reads find no segments to apply.
		v.wlMerge = im != nil && im.last
		return cb.SetSequence(seq)
	})
	if err != nil {
		return nil, err
	}
	if !dry {
		for i, p := range prep {
			if !results[i].Duplicate && !results[i].Updated {
				v.meta.put(p.id, metaEntry{version: p.rec.Version, id: p.rec.ID, kind: p.rec.Kind, date: p.rec.Date, created: p.rec.CreatedAt})
			}
		}
		for _, nr := range updated {
			v.meta.put(keyOf(nr.ID), metaEntry{version: nr.Version, id: nr.ID, kind: nr.Kind, date: nr.Date, created: nr.CreatedAt})
		}
		v.trimAfter(len(recs))
	}
	return results, nil
}

// replaceVersion makes the imported record p the new version of old, at
// change sequence seq: old goes to the history, and the record keeps its
// ID, its entry time and its place in the kind index (moved if the kind
// changed).
func (v *Vault) replaceVersion(tx kv.Tx, old, p *record.Record, seq uint64) (record.Record, error) {
	rb, xb, _, cb := v.buckets(tx)
	if err := v.keepHistory(tx.Bucket([]byte{bucketHistory}), old); err != nil {
		return record.Record{}, err
	}
	nr := *old
	nr.Resource, nr.Kind, nr.ResourceType, nr.Date, nr.Display = p.Resource, p.Kind, p.ResourceType, p.Date, p.Display
	nr.Provenance = p.Provenance
	if err := v.rewriteAt(rb, xb, cb, old, &nr, seq); err != nil {
		return record.Record{}, err
	}
	return nr, nil
}

// ownRunFrom is the size of a batch from which its IDs start a run of
// their own.
const ownRunFrom = 64

// trimEvery is how many records Add writes between trims of the mapped
// file (see trimMapped).
const trimEvery = 1_000

// trimAfter counts written records and trims the mapping now and then.
func (v *Vault) trimAfter(n int) {
	if v.written.Add(int64(n))%trimEvery < int64(n) {
		v.trimMapped()
	}
}

// Put stores one new record; see Add. It returns the stored record's ID.
func (v *Vault) Put(r record.Record) (AddResult, error) {
	res, err := v.Add([]record.Record{r})
	if err != nil {
		return AddResult{}, err
	}
	return res[0], nil
}

// buckets returns the buckets of records, the kind index (nil from
// format 4 on), the fingerprints and the changes feed.
func (v *Vault) buckets(tx kv.Tx) (records, index, finger, changes kv.Bucket) {
	return tx.Bucket([]byte{bucketRecords}), tx.Bucket([]byte{bucketIndex}), tx.Bucket([]byte{bucketFinger}), tx.Bucket([]byte{bucketChanges})
}

// findFingerprint returns the record key stored under a fingerprint:
// under its key, or in a vault that may still have keys of an older
// format, under those of its input (day is record.Fingerprint's cluster).
func (v *Vault) findFingerprint(fb kv.Bucket, key, input, day []byte) []byte {
	if old := fb.Get(key); old != nil {
		return old
	}
	if rec := v.pendingFingerprint(key); rec != nil {
		return rec
	}
	if v.fpDay.Load() && day != nil {
		if old := fb.Get(v.keys.fingerprintKey(input, day)); old != nil {
			return old
		}
	}
	if v.fpLegacy.Load() {
		return fb.Get(v.keys.fingerprint(input))
	}
	return nil
}

// fingerprintKeys returns the keys the fingerprint of r's content (input,
// with record.Fingerprint's cluster day) may be stored under: its key,
// and in a vault that may still have keys of older formats, those.
func (v *Vault) fingerprintKeys(r *record.Record, input, day []byte) [][]byte {
	keys := [][]byte{v.keys.fingerprintKey(input, v.cluster(r, day))}
	if v.format >= 4 && v.fpDay.Load() && day != nil {
		keys = append(keys, v.keys.fingerprintKey(input, day))
	}
	if v.fpLegacy.Load() {
		keys = append(keys, v.keys.fingerprint(input))
	}
	return keys
}

// cluster is the fingerprint cluster a vault keys r's fingerprint by.
// record.Fingerprint clusters by source, resource type and UTC day (day);
// format 4 clusters by source, resource type and ISO week of the same
// date, so that an import of samples a few a day (the Apple Health
// export of docs/performance.md has 6 heart rates a day) writes a few
// pages of the index per transaction rather than one per day. Like the
// day, the week is a function of the content, so equal records share a
// cluster. Records without a cluster (day nil) have none.
func (v *Vault) cluster(r *record.Record, day []byte) []byte {
	if v.format < 4 || day == nil {
		return day
	}
	week := ""
	if !r.Date.IsZero() {
		y, w := r.Date.UTC().ISOWeek()
		week = fmt.Sprintf("%04d-W%02d", y, w)
	}
	h := sha256.New()
	for _, s := range []string{"cluster4", r.Provenance.Source(), r.ResourceType, week} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return h.Sum(nil)
}

// packFull fills the pages of buckets whose new keys come in runs
// (records, the kind index) or in order (the changes feed) instead of
// leaving them half empty: bbolt splits a page at its bucket's fill
// percent, and a page of such a bucket is seldom written again, so its
// free half would stay free. Buckets with scattered keys (fingerprints)
// keep bbolt's default, which leaves room for the keys still to come.
func packFull(bs ...kv.Bucket) {
	for _, b := range bs {
		if b != nil {
			kv.SetFillPercent(b, 1.0)
		}
	}
}

func (v *Vault) indexKey(kind string, id []byte) []byte {
	return append(v.keys.kindPrefix(kind), id...)
}

func seqKey(seq uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], seq)
	return b[:]
}

// keyOf is the bbolt key of a record ID: the ID rotated so that the part
// shared by records made together comes first (see record.NewID).
func keyOf(id string) []byte {
	if len(id) != 16 {
		return []byte(id)
	}
	return []byte(id[8:] + id[:8])
}

// idOf is the record ID of a bbolt key.
func idOf(key []byte) string {
	if len(key) != 16 {
		return string(key)
	}
	return string(key[8:]) + string(key[:8])
}

// load reads and unseals the record stored under key.
func (v *Vault) load(rb kv.Bucket, key []byte) (record.Record, error) {
	sealed := rb.Get(key)
	if sealed == nil {
		return record.Record{}, ErrNotFound
	}
	id := idOf(key)
	pt, version, err := v.openEnvelope(rb.Tx(), bucketRecords, key, sealed)
	if err != nil {
		return record.Record{}, fmt.Errorf("record %s: %w", id, err)
	}
	r, err := decodeRecord(pt)
	if err != nil || r.ID != id {
		return record.Record{}, fmt.Errorf("record %s: %w: bad envelope", id, ErrCorrupt)
	}
	if version != 0 && version != r.Version {
		return record.Record{}, fmt.Errorf("record %s: %w: its version does not match its seal", id, ErrCorrupt)
	}
	return r, nil
}

// Get returns the record with the given ID, tombstones included. In
// format 4 the record must be the version the listing index (named from
// the authenticated head) holds at its place: an older sealed value put
// back in the file is ErrTampered, not an answer.
func (v *Vault) Get(id string) (record.Record, error) {
	var r record.Record
	err := v.view(func(tx kv.Tx) error {
		var err error
		if r, err = v.load(tx.Bucket([]byte{bucketRecords}), keyOf(id)); err != nil {
			return err
		}
		return v.checkListed(tx, &r)
	})
	return r, err
}

// checkListed checks that r is the version of the record that the
// listing index names, looking at the one place in the listing order
// where r's entry sits (a few nodes read). A record whose seal opens but
// that the listing does not hold there, with that version and state, was
// put back from an older copy of the file. Formats before 4 have no
// listing index: their reads verify the head instead.
func (v *Vault) checkListed(tx kv.Tx, r *record.Record) error {
	lv, err := v.listing(tx)
	if err != nil || lv == nil {
		return err
	}
	return lv.checkListed(r)
}

// checkListed is Vault.checkListed in an open listing, for reads of
// several records in one transaction.
func (lv *listView) checkListed(r *record.Record) error {
	k := sortKeyOf(r)
	listed := false
	if _, err := lv.walkRange(true, &k, nil, &entryFilter{includeDeleted: true}, func(e *rawEntry, in *entryInfo) (bool, error) {
		listed = e.key.compare(k) == 0 && in.version == r.Version && in.deleted == r.Deleted
		return false, nil
	}); err != nil {
		return err
	}
	if !listed {
		return tampered(fmt.Sprintf("record %s at version %d is not the version the listing index holds", r.ID, r.Version))
	}
	return nil
}

// Resolve expands a unique ID prefix (at least 4 characters) to a full
// record ID.
func (v *Vault) Resolve(prefix string) (string, error) {
	prefix = strings.ToLower(strings.TrimSpace(prefix))
	if len(prefix) < 4 {
		return "", ErrNotFound
	}
	var match string
	err := v.view(func(tx kv.Tx) error {
		// IDs are stored rotated, so a prefix of an ID is no prefix of
		// keys: scan them all (cheap: keys only, no unsealing).
		return tx.Bucket([]byte{bucketRecords}).ForEach(func(k, _ []byte) error {
			if id := idOf(k); strings.HasPrefix(id, prefix) {
				if match != "" {
					return ErrAmbiguous
				}
				match = id
			}
			return nil
		})
	})
	if err == nil && match == "" {
		err = ErrNotFound
	}
	return match, err
}

// Update replaces a record's resource (and provenance, if set); the
// version it replaces goes to the record's history. If ifVersion is not 0
// it must equal the stored version, else ErrConflict and nothing is
// written. It returns the new record.
func (v *Vault) Update(r record.Record, ifVersion uint64) (record.Record, error) {
	if len(r.Resource) == 0 {
		return record.Record{}, errors.New("update: no resource")
	}
	if err := r.Derive(); err != nil {
		return record.Record{}, err
	}
	var out record.Record
	err := v.update(func(tx kv.Tx) error {
		rb, xb, _, cb := v.buckets(tx)
		old, err := v.load(rb, keyOf(r.ID))
		if err != nil {
			return err
		}
		if old.Deleted {
			return ErrDeleted
		}
		if ifVersion != 0 && old.Version != ifVersion {
			return ErrConflict
		}
		nr := old
		nr.Resource, nr.Kind, nr.ResourceType, nr.Date, nr.Display = r.Resource, r.Kind, r.ResourceType, r.Date, r.Display
		if r.Provenance.Method != "" {
			nr.Provenance = r.Provenance
		}
		if err := v.keepHistory(tx.Bucket([]byte{bucketHistory}), &old); err != nil {
			return err
		}
		if err := v.rewrite(rb, xb, cb, &old, &nr); err != nil {
			return err
		}
		out = nr
		return nil
	})
	if err == nil {
		v.meta.put(keyOf(out.ID), metaEntry{version: out.Version, id: out.ID, kind: out.Kind, date: out.Date, created: out.CreatedAt})
	}
	return out, err
}

// rewrite stores nr in place of old: a new version and change sequence.
func (v *Vault) rewrite(rb, xb, cb kv.Bucket, old, nr *record.Record) error {
	seq, err := cb.NextSequence()
	if err != nil {
		return err
	}
	return v.rewriteAt(rb, xb, cb, old, nr, seq)
}

// rewriteAt is rewrite at change sequence seq, which the caller has taken
// from the changes bucket.
func (v *Vault) rewriteAt(rb, xb, cb kv.Bucket, old, nr *record.Record, seq uint64) error {
	id := keyOf(old.ID)
	nr.Version = old.Version + 1
	nr.UpdatedAt = v.now().UTC()
	nr.Seq = seq
	if err := cb.Delete(seqKey(old.Seq)); err != nil {
		return err
	}
	if err := cb.Put(seqKey(seq), id); err != nil {
		return err
	}
	if xb != nil && (old.Kind != nr.Kind || nr.Deleted) {
		if err := xb.Delete(v.indexKey(old.Kind, id)); err != nil {
			return err
		}
		if !nr.Deleted {
			if err := xb.Put(v.indexKey(nr.Kind, id), nil); err != nil {
				return err
			}
		}
	}
	pt, err := v.sealEnvelope(rb.Tx(), nr)
	if err != nil {
		return err
	}
	v.listPut(old, nr)
	return v.putSealed(rb, bucketRecords, id, nr.Version, pt)
}

// Delete replaces a record with a tombstone: its ID, type and version
// remain (for sync), its content and its earlier versions are gone. The
// dedup fingerprints and identity keys stay, so re-importing the file it
// came from, or a newer version of it, does not bring it back. If ifVersion
// is not 0 it must equal the stored version.
func (v *Vault) Delete(id string, ifVersion uint64) error {
	var tomb record.Record
	err := v.update(func(tx kv.Tx) error {
		rb, xb, _, cb := v.buckets(tx)
		old, err := v.load(rb, keyOf(id))
		if err != nil {
			return err
		}
		if old.Deleted {
			return ErrDeleted
		}
		if ifVersion != 0 && old.Version != ifVersion {
			return ErrConflict
		}
		tomb = record.Record{ID: old.ID, Kind: old.Kind, ResourceType: old.ResourceType, CreatedAt: old.CreatedAt, Deleted: true,
			Provenance: record.Provenance{Method: old.Provenance.Method}}
		if err := v.dropHistory(tx.Bucket([]byte{bucketHistory}), keyOf(id)); err != nil {
			return err
		}
		return v.rewrite(rb, xb, cb, &old, &tomb)
	})
	if err == nil {
		v.meta.put(keyOf(id), metaEntry{version: tomb.Version, id: id, kind: tomb.Kind, created: tomb.CreatedAt, deleted: true})
	}
	return err
}

// Query selects records. The zero Query selects every live record.
type Query struct {
	// Kinds restricts to these record kinds (record.KindMedication, ...).
	// Listing by kind reads only that kind's records, through the index.
	Kinds []string
	// Since and Until bound the record's clinical date (inclusive, and
	// exclusive); records without a date are left out when either is set.
	Since, Until time.Time
	// Source matches the provenance source, importer or file,
	// case-insensitively, as a substring.
	Source string
	// Text matches the display text and the resource's string values,
	// case-insensitively.
	Text string
	// IncludeDeleted returns tombstones too (only without Kinds).
	IncludeDeleted bool
	// Limit caps the number of records returned after sorting (0: all).
	Limit int
	// Oldest sorts oldest first; the default is newest first.
	Oldest bool
}

// List returns the records matching q, newest first (by clinical date,
// then by entry time). It holds them all in memory: Each and Entries
// stream.
func (v *Vault) List(q Query) ([]record.Record, error) {
	if v.format >= 4 {
		var out []record.Record
		err := v.Each(q, func(r record.Record) error {
			out = append(out, r)
			return nil
		})
		if err != nil {
			return nil, err
		}
		return out, nil
	}
	if q.Limit > 0 && strings.TrimSpace(q.Text) == "" && strings.TrimSpace(q.Source) == "" {
		cands, ok, err := v.listFast(q)
		if err != nil {
			return nil, err
		}
		if ok {
			out := make([]record.Record, 0, len(cands))
			err := v.view(func(tx kv.Tx) error {
				rb := tx.Bucket([]byte{bucketRecords})
				for _, c := range cands {
					if r, ok := v.meta.cached(c.key); ok && r.Version == c.e.version {
						out = append(out, r)
						continue
					}
					r, err := v.load(rb, []byte(c.key))
					if err != nil {
						return err
					}
					v.meta.cache(c.key, r)
					out = append(out, r)
				}
				return nil
			})
			if err == nil {
				return out, nil
			}
			if !errors.Is(err, ErrNotFound) {
				return nil, err
			}
			v.meta.reset() // out of date: list the slow way
		}
	}
	var out []record.Record
	text := strings.ToLower(strings.TrimSpace(q.Text))
	source := strings.ToLower(strings.TrimSpace(q.Source))
	match := func(r *record.Record) bool {
		if r.Deleted && !q.IncludeDeleted {
			return false
		}
		if !q.Since.IsZero() || !q.Until.IsZero() {
			if r.Date.IsZero() || (!q.Since.IsZero() && r.Date.Before(q.Since)) || (!q.Until.IsZero() && !r.Date.Before(q.Until)) {
				return false
			}
		}
		if source != "" {
			p := r.Provenance
			if !containsFold(p.Source(), source) && !containsFold(p.Importer, source) && !containsFold(p.File, source) && !containsFold(p.Method, source) {
				return false
			}
		}
		if text != "" && !containsFold(r.Display, text) && !resourceContains(r.Resource, text) {
			return false
		}
		return true
	}
	if len(q.Kinds) > 0 {
		// A selection by kind reads only the kind's records: first make
		// sure no value of the file was put back from an older copy
		// (once per open; see Verify).
		if err := v.Verify(); err != nil {
			return nil, err
		}
	}
	err := v.selectRecords(q, match, func(r record.Record) { out = append(out, r) })
	if err != nil {
		return nil, err
	}
	Sort(out, q.Oldest)
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, nil
}

// Sort orders records by clinical date (records without one last), then
// by entry time and ID: newest first, or oldest first. It sorts small keys
// and moves each record once: records are large structs, and swapping
// them was most of the cost of a listing.
func Sort(recs []record.Record, oldest bool) {
	type key struct {
		date, created time.Time
		id            string
		i             int
	}
	keys := make([]key, len(recs))
	for i := range recs {
		r := &recs[i]
		keys[i] = key{r.Date, r.CreatedAt, r.ID, i}
	}
	slices.SortFunc(keys, func(a, b key) int { return compareFacts(a.date, b.date, a.created, b.created, a.id, b.id, oldest) })
	sorted := make([]record.Record, len(recs))
	for j, k := range keys {
		sorted[j] = recs[k.i]
	}
	copy(recs, sorted)
}

func containsFold(s, lowerSub string) bool {
	return strings.Contains(strings.ToLower(s), lowerSub)
}

// Change is one entry of the changes feed.
type Change struct {
	Seq    uint64
	Record record.Record // a tombstone when Record.Deleted
}

// Changes returns the records changed after sequence since, in order, at
// most limit of them (0: no limit), and the sequence to ask from next.
// Each record appears once, at its latest change.
func (v *Vault) Changes(since uint64, limit int) ([]Change, uint64, error) {
	var out []Change
	next := since
	err := v.view(func(tx kv.Tx) error {
		rb, _, _, cb := v.buckets(tx)
		// Each record must be the version the listing index holds (format
		// 4): a value put back from an older copy is not a change.
		lv, err := v.listing(tx)
		if err != nil {
			return err
		}
		c := cb.Cursor()
		for k, id := c.Seek(seqKey(since + 1)); k != nil; k, id = c.Next() {
			if limit > 0 && len(out) >= limit {
				break
			}
			r, err := v.load(rb, id)
			if err != nil {
				return err
			}
			if lv != nil {
				if err := lv.checkListed(&r); err != nil {
					return err
				}
			}
			seq := binary.BigEndian.Uint64(k)
			out = append(out, Change{Seq: seq, Record: r})
			next = seq
		}
		return nil
	})
	return out, next, err
}

// LastSeq returns the vault's latest change sequence.
func (v *Vault) LastSeq() (uint64, error) {
	var seq uint64
	err := v.view(func(tx kv.Tx) error {
		seq = tx.Bucket([]byte{bucketChanges}).Sequence()
		return nil
	})
	return seq, err
}

// Count returns the number of live records and tombstones.
func (v *Vault) Count() (live, deleted int, err error) {
	err = v.view(func(tx kv.Tx) error {
		if v.format >= 4 {
			h, err := loadHead(tx, v.keys)
			if err != nil {
				return err
			}
			if h == nil || h.list == nil {
				return tampered("the head is missing")
			}
			live, deleted = int(h.list.live), int(h.list.deleted)
			return nil
		}
		rb := tx.Bucket([]byte{bucketRecords})
		return rb.ForEach(func(k, _ []byte) error {
			r, err := v.load(rb, k)
			if err != nil {
				return err
			}
			if r.Deleted {
				deleted++
			} else {
				live++
			}
			return nil
		})
	})
	return live, deleted, err
}

// Purge removes records completely: no tombstone, no fingerprint, no
// change entry. It is for undoing a failed import whose records nobody has
// seen; everything else uses Delete.
func (v *Vault) Purge(ids []string) error {
	defer v.meta.reset()
	return v.update(func(tx kv.Tx) error {
		rb, xb, fb, cb := v.buckets(tx)
		for _, id := range ids {
			r, err := v.load(rb, keyOf(id))
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if in, cl := record.Fingerprint(&r); in != nil {
				for _, fp := range v.fingerprintKeys(&r, in, cl) {
					if string(fb.Get(fp)) == string(keyOf(id)) {
						if err := fb.Delete(fp); err != nil {
							return err
						}
					}
				}
				if err := v.dropOccurrence(fb, in, v.cluster(&r, cl), keyOf(id)); err != nil {
					return err
				}
			}
			if err := v.deleteIdentities(tx.Bucket([]byte{bucketIdentity}), record.Identities(&r), keyOf(id)); err != nil {
				return err
			}
			if err := v.dropHistory(tx.Bucket([]byte{bucketHistory}), keyOf(id)); err != nil {
				return err
			}
			if xb != nil {
				if err := xb.Delete(v.indexKey(r.Kind, keyOf(id))); err != nil {
					return err
				}
			}
			if err := cb.Delete(seqKey(r.Seq)); err != nil {
				return err
			}
			if err := v.deleteSealed(rb, bucketRecords, keyOf(id)); err != nil {
				return err
			}
			v.listPut(&r, nil)
		}
		return nil
	})
}

// purgeImport is PurgeImport. If lenient, records that do not open are
// left where they are (Check reports them) instead of failing the purge:
// a rollback at Open must not lock the owner out over one damaged record.
//
// Records the import updated (see versions.go) get their earlier version
// back, as a new version, and are not counted.
func (v *Vault) purgeImport(since uint64, fileSHA256 string, lenient bool) (int, error) {
	ids, err := v.importIDs(since, fileSHA256, lenient)
	if err != nil {
		return 0, err
	}
	for start := 0; start < len(ids); start += 10_000 {
		if err := v.Purge(ids[start:min(start+10_000, len(ids))]); err != nil {
			return 0, err
		}
	}
	if err := v.restoreUpdated(since, fileSHA256, lenient); err != nil {
		return 0, err
	}
	return len(ids), nil
}

// restoreUpdated gives the records that an import of fileSHA256, started
// after sequence since, made new versions of their earlier version back:
// the import's version goes (from the history too), its fingerprint and
// identity keys with it, and the earlier content becomes the newest
// version.
func (v *Vault) restoreUpdated(since uint64, fileSHA256 string, lenient bool) error {
	defer v.meta.reset()
	return v.update(func(tx kv.Tx) error {
		rb, xb, fb, cb := v.buckets(tx)
		hb, ib := tx.Bucket([]byte{bucketHistory}), tx.Bucket([]byte{bucketIdentity})
		if hb == nil {
			return nil
		}
		var keys [][]byte
		c := cb.Cursor()
		for k, key := c.Seek(seqKey(since + 1)); k != nil; k, key = c.Next() {
			keys = append(keys, append([]byte(nil), key...))
		}
		for _, key := range keys {
			cur, err := v.load(rb, key)
			if err != nil {
				if lenient {
					continue
				}
				return err
			}
			if cur.Deleted || cur.Version < 2 || cur.Provenance.FileSHA256 != fileSHA256 {
				continue
			}
			hk := historyKey(key, cur.Version-1)
			sealed := hb.Get(hk)
			if sealed == nil {
				continue
			}
			pt, _, err := v.openEnvelope(tx, bucketHistory, hk, sealed)
			if err != nil {
				return fmt.Errorf("record %s: history: %w", cur.ID, err)
			}
			prev, err := decodeRecord(pt)
			if err != nil || prev.ID != cur.ID {
				return fmt.Errorf("record %s: %w: bad history entry", cur.ID, ErrCorrupt)
			}
			if prev.Provenance.FileSHA256 == fileSHA256 {
				continue // the file's own earlier record: not an update
			}
			if in, cl := record.Fingerprint(&cur); in != nil {
				for _, fp := range v.fingerprintKeys(&cur, in, cl) {
					if bytes.Equal(fb.Get(fp), key) {
						if err := fb.Delete(fp); err != nil {
							return err
						}
					}
				}
			}
			keep := map[string]bool{}
			for _, in := range record.Identities(&prev) {
				keep[string(in)] = true
			}
			for _, in := range record.Identities(&cur) {
				if !keep[string(in)] {
					if err := v.deleteIdentities(ib, [][]byte{in}, key); err != nil {
						return err
					}
				}
			}
			if err := v.deleteSealed(hb, bucketHistory, hk); err != nil {
				return err
			}
			nr := cur
			nr.Resource, nr.Kind, nr.ResourceType, nr.Date, nr.Display, nr.Provenance = prev.Resource, prev.Kind, prev.ResourceType, prev.Date, prev.Display, prev.Provenance
			if err := v.rewrite(rb, xb, cb, &cur, &nr); err != nil {
				return err
			}
		}
		return nil
	})
}

// importIDs lists the records an import of fileSHA256 that started after
// sequence since added and that nobody changed since.
func (v *Vault) importIDs(since uint64, fileSHA256 string, lenient bool) ([]string, error) {
	var ids []string
	err := v.view(func(tx kv.Tx) error {
		rb, _, _, cb := v.buckets(tx)
		var err error
		ids, err = v.importIDsTx(rb, cb, since, fileSHA256, lenient)
		return err
	})
	return ids, err
}

func (v *Vault) importIDsTx(rb, cb kv.Bucket, since uint64, fileSHA256 string, lenient bool) ([]string, error) {
	var ids []string
	c := cb.Cursor()
	for k, key := c.Seek(seqKey(since + 1)); k != nil; k, key = c.Next() {
		r, err := v.load(rb, key)
		if err != nil {
			if lenient {
				continue
			}
			return nil, err
		}
		if r.Provenance.FileSHA256 == fileSHA256 && r.Version == 1 {
			ids = append(ids, r.ID)
		}
	}
	return ids, nil
}
