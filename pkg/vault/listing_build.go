package vault

import (
	"fmt"
	"slices"

	"github.com/phr-project/phr/pkg/kv"
	"github.com/phr-project/phr/pkg/record"
)

// Building the listing index from the records: when a vault is upgraded
// to format 4, when Check repairs it, and after a restore. The records'
// sort keys are read first (one pass that decodes each envelope's facts,
// not its resource) and sorted in memory, 48 bytes a record; then the
// records are read in that order and their entries written as full
// leaves, and the levels above as their children fill up.

// compactKey is a sortKey with the ID inline, for sorting many.
type compactKey struct {
	dsec, csec   int64
	dnsec, cnsec int32
	dated        bool
	id           [16]byte
	idLen        uint8
}

func (k *compactKey) sortKey() sortKey {
	return sortKey{dated: k.dated, dsec: k.dsec, dnsec: k.dnsec, csec: k.csec, cnsec: k.cnsec, id: string(k.id[:k.idLen])}
}

// bulkBuilder writes a tree from entries given in order.
type bulkBuilder struct {
	v      *Vault
	meta   *listMeta
	leaf   []rawEntry
	infos  []entryInfo
	levels [][]child // children waiting for their parent, per level
	first  uint64    // the first node number it wrote
}

func newBulkBuilder(v *Vault, m *listMeta) *bulkBuilder {
	return &bulkBuilder{v: v, meta: m, first: m.next}
}

func (bb *bulkBuilder) writeNode(b kv.Bucket, level uint64, n *listNode) (child, error) {
	ref := nodeRef{bb.meta.next, 1}
	bb.meta.next++
	typ := byte(nodeInternal)
	if level == 0 {
		typ = nodeLeaf
	}
	if err := bb.v.writeNode(b, ref.num, ref.version, typ, encodeNodeBody(n)); err != nil {
		return child{}, err
	}
	return summarize(ref, n), nil
}

// add appends the entry of a record.
func (bb *bulkBuilder) add(b kv.Bucket, r *record.Record) error {
	e := entryOf(r)
	re, in := newRawEntry(&e, bb.meta.kind(e.Kind))
	bb.leaf = append(bb.leaf, *re)
	bb.infos = append(bb.infos, in)
	if r.Deleted {
		bb.meta.deleted++
	} else {
		bb.meta.live++
	}
	if len(bb.leaf) < leafMax {
		return nil
	}
	return bb.flushLeaf(b)
}

func (bb *bulkBuilder) flushLeaf(b kv.Bucket) error {
	if len(bb.leaf) == 0 {
		return nil
	}
	c, err := bb.writeNode(b, 0, &listNode{entries: bb.leaf, infos: bb.infos})
	if err != nil {
		return err
	}
	bb.leaf, bb.infos = nil, nil
	return bb.up(b, 0, c, false)
}

// up adds a node's summary to the level above it (level+1's children)
// and writes that level's node when it is full (or at the end).
func (bb *bulkBuilder) up(b kv.Bucket, level int, c child, final bool) error {
	for len(bb.levels) <= level {
		bb.levels = append(bb.levels, nil)
	}
	bb.levels[level] = append(bb.levels[level], c)
	if len(bb.levels[level]) < innerMax {
		return nil
	}
	return bb.flushLevel(b, level)
}

func (bb *bulkBuilder) flushLevel(b kv.Bucket, level int) error {
	cs := bb.levels[level]
	if len(cs) == 0 {
		return nil
	}
	bb.levels[level] = nil
	c, err := bb.writeNode(b, uint64(level)+1, &listNode{level: uint64(level) + 1, children: cs})
	if err != nil {
		return err
	}
	return bb.up(b, level+1, c, false)
}

// finish writes what is left and makes the tree the meta's.
func (bb *bulkBuilder) finish(b kv.Bucket) error {
	if err := bb.flushLeaf(b); err != nil {
		return err
	}
	for level := 0; level < len(bb.levels); level++ {
		cs := bb.levels[level]
		top := level == len(bb.levels)-1
		if top && len(cs) <= 1 {
			if len(cs) == 1 {
				bb.meta.root, bb.meta.height = cs[0].ref, uint64(level)
			}
			return nil
		}
		if err := bb.flushLevel(b, level); err != nil {
			return err
		}
	}
	bb.meta.root, bb.meta.height = nodeRef{}, 0
	return nil
}

// sortedKeys reads the sort key of every record (tombstones too).
func (v *Vault) sortedKeys(tx kv.Tx) ([]compactKey, error) {
	rb := tx.Bucket([]byte{bucketRecords})
	// No capacity from rb.Stats(): counting the keys reads every page of
	// the bucket at once, past the page dropping of the scan below (a
	// 490 MB format-3 vault was then resident whole during its upgrade).
	var keys []compactKey
	kinds := map[string]string{}
	scan := v.scanTrimmer()
	err := rb.ForEach(func(k, sealed []byte) error {
		scan.tick(tx)
		id := idOf(k)
		env, _, err := v.openEnvelope(tx, bucketRecords, k, sealed)
		if err != nil {
			return fmt.Errorf("record %s: %w", id, err)
		}
		f, err := decodeFacts(env, id, kinds)
		if err != nil {
			return fmt.Errorf("record %s: %w: bad envelope", id, ErrCorrupt)
		}
		var ck compactKey
		if len(id) > len(ck.id) {
			return fmt.Errorf("record %s: %w: bad ID", id, ErrCorrupt)
		}
		sk := keyOfEntry(&Entry{ID: id, Date: f.date, Created: f.created})
		ck.dated, ck.dsec, ck.dnsec, ck.csec, ck.cnsec = sk.dated, sk.dsec, sk.dnsec, sk.csec, sk.cnsec
		ck.idLen = uint8(copy(ck.id[:], id))
		keys = append(keys, ck)
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(keys, func(a, b compactKey) int { return a.sortKey().compare(b.sortKey()) })
	return keys, nil
}

// buildListing writes a new listing tree of every record, continuing the
// node numbers of m (nil: a new index), in transactions of about
// buildTxEntries entries (0: all in the caller's transaction, tx). Then
// install runs in the last transaction with the new meta. Node numbers
// from the new meta's first to its next are the new tree's: anything
// else in the bucket is the old index's.
func (v *Vault) buildListing(tx kv.Tx, m *listMeta, perTx int, install func(tx kv.Tx, nm *listMeta, first uint64) error) error {
	nm := newListMeta()
	if m != nil {
		nm.next = m.next
	}
	bb := newBulkBuilder(v, nm)
	if tx != nil {
		keys, err := v.sortedKeys(tx)
		if err != nil {
			return err
		}
		if err := bb.addAll(tx, keys); err != nil {
			return err
		}
		if err := bb.finish(tx.Bucket([]byte{bucketListing})); err != nil {
			return err
		}
		return install(tx, nm, bb.first)
	}
	var keys []compactKey
	if err := v.view(func(tx kv.Tx) error {
		var err error
		keys, err = v.sortedKeys(tx)
		return err
	}); err != nil {
		return err
	}
	for start := 0; ; start += perTx {
		end := min(start+perTx, len(keys))
		last := end == len(keys)
		err := v.update(func(tx kv.Tx) error {
			if err := bb.addAll(tx, keys[start:end]); err != nil {
				return err
			}
			if !last {
				return nil
			}
			if err := bb.finish(tx.Bucket([]byte{bucketListing})); err != nil {
				return err
			}
			return install(tx, nm, bb.first)
		})
		if err != nil || last {
			return err
		}
	}
}

// addAll adds the entries of the records with the given keys.
func (bb *bulkBuilder) addAll(tx kv.Tx, keys []compactKey) error {
	rb, lb := tx.Bucket([]byte{bucketRecords}), tx.Bucket([]byte{bucketListing})
	scan := bb.v.scanTrimmer()
	for i := range keys {
		scan.tick(tx)
		r, err := bb.v.load(rb, keyOf(string(keys[i].id[:keys[i].idLen])))
		if err != nil {
			return err
		}
		if err := bb.add(lb, &r); err != nil {
			return err
		}
	}
	return nil
}

// dropNodesExcept deletes every value of the listing bucket but the
// nodes numbered [first, next): what an old index left.
func (v *Vault) dropNodesExcept(tx kv.Tx, first, next uint64) error {
	b := tx.Bucket([]byte{bucketListing})
	var old [][]byte
	if err := b.ForEach(func(k, _ []byte) error {
		if len(k) == 8 {
			if n := bytesNum(k); n >= first && n < next {
				return nil
			}
		}
		old = append(old, append([]byte(nil), k...))
		return nil
	}); err != nil {
		return err
	}
	for _, k := range old {
		if err := v.deleteSealed(b, bucketListing, k); err != nil {
			return err
		}
	}
	return nil
}

func bytesNum(k []byte) uint64 {
	var n uint64
	for _, c := range k {
		n = n<<8 | uint64(c)
	}
	return n
}
