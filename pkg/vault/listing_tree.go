package vault

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/phr-project/phr/pkg/kv"
)

// The listing tree.
//
// Nodes are sealed values in the listing bucket under their number
// (uint64 BE), sealed with their version, and compressed:
//
//	leaf:     0x01 ‖ zstd frame (no magic) of: uvarint n ‖ n × entry
//	internal: 0x02 ‖ zstd frame (no magic) of: uvarint level ‖ uvarint n ‖ n × child
//	segment:  0x03 ‖ zstd frame (no magic) of: uvarint n ‖ n × change
//
// A child is: uvarint number ‖ uvarint version ‖ its first entry's sort
// key ‖ uvarint live ‖ uvarint deleted ‖ uvarint length ‖ kind bits (bit
// i set: some live entry under it has kind number i). A change is 0x01 ‖
// entry (the record's new entry) or 0x02 (the record is gone), then 0x00,
// or 0x01 ‖ the sort key of the record's entry before the change.
//
// The tree's root, the kind table, the segments and the totals (the
// listing meta) are in the authenticated head:
//
//	0x01 ‖ uvarint root number (0: empty) ‖ uvarint root version ‖ uvarint height
//	‖ uvarint next number ‖ uvarint live ‖ uvarint deleted
//	‖ uvarint n ‖ n × (uvarint length ‖ kind)
//	‖ uvarint m ‖ m × (uvarint number ‖ uvarint version ‖ uvarint changes)

const (
	nodeLeaf     = 1
	nodeInternal = 2
	nodeSegment  = 3

	// leafMax and innerMax bound the entries of a leaf and the children
	// of an internal node; a node rewritten with more is split evenly.
	leafMax  = 64
	innerMax = 64
	// listMergeAt is how many changes the delta segments hold before a
	// write merges them into the tree; listMaxSegments how many
	// segments they may be.
	listMergeAt     = 2048
	listMaxSegments = 32
)

type nodeRef struct{ num, version uint64 }

type segRef struct {
	nodeRef
	changes uint64
}

// listMeta is the listing index's root, kept in the head.
type listMeta struct {
	root          nodeRef
	height        uint64
	next          uint64
	live, deleted uint64
	kinds         []string
	kindNum       map[string]uint64
	segs          []segRef
}

const listMetaVersion = 1

func newListMeta() *listMeta { return &listMeta{next: 1, kindNum: map[string]uint64{}} }

// kind returns the number of a kind, adding it to the table.
func (m *listMeta) kind(k string) uint64 {
	if n, ok := m.kindNum[k]; ok {
		return n
	}
	n := uint64(len(m.kinds))
	m.kinds = append(m.kinds, k)
	m.kindNum[k] = n
	return n
}

func (m *listMeta) encode(b []byte) []byte {
	b = append(b, listMetaVersion)
	for _, u := range []uint64{m.root.num, m.root.version, m.height, m.next, m.live, m.deleted, uint64(len(m.kinds))} {
		b = binary.AppendUvarint(b, u)
	}
	for _, k := range m.kinds {
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
	}
	b = binary.AppendUvarint(b, uint64(len(m.segs)))
	for _, s := range m.segs {
		b = binary.AppendUvarint(b, s.num)
		b = binary.AppendUvarint(b, s.version)
		b = binary.AppendUvarint(b, s.changes)
	}
	return b
}

func decodeListMeta(b []byte) (*listMeta, error) {
	bad := fmt.Errorf("%w: malformed listing root", ErrCorrupt)
	if len(b) == 0 {
		return nil, bad
	}
	if b[0] != listMetaVersion {
		if b[0] > listMetaVersion {
			return nil, ErrNewerVersion
		}
		return nil, bad
	}
	d := decoder{b: b[1:]}
	m := newListMeta()
	m.root.num, m.root.version, m.height, m.next, m.live, m.deleted = d.uvarint(), d.uvarint(), d.uvarint(), d.uvarint(), d.uvarint(), d.uvarint()
	n := d.uvarint()
	for i := uint64(0); i < n && !d.err; i++ {
		k := string(d.bytes())
		if _, dup := m.kindNum[k]; dup {
			d.err = true
		}
		m.kindNum[k] = uint64(len(m.kinds))
		m.kinds = append(m.kinds, k)
	}
	n = d.uvarint()
	for i := uint64(0); i < n && !d.err; i++ {
		m.segs = append(m.segs, segRef{nodeRef{d.uvarint(), d.uvarint()}, d.uvarint()})
	}
	if d.err || len(d.b) != 0 || m.height > 64 {
		return nil, bad
	}
	return m, nil
}

// child is an internal node's summary of one child.
type child struct {
	ref           nodeRef
	first         sortKey
	live, deleted uint64
	kinds         []byte // bit set of kind numbers of live entries
}

func setKind(bits []byte, n uint64) []byte {
	for uint64(len(bits)) <= n/8 {
		bits = append(bits, 0)
	}
	bits[n/8] |= 1 << (n % 8)
	return bits
}

func orKinds(a, b []byte) []byte {
	for len(a) < len(b) {
		a = append(a, 0)
	}
	for i, x := range b {
		a[i] |= x
	}
	return a
}

// listNode is a decoded node.
type listNode struct {
	level    uint64 // 0: a leaf
	entries  []rawEntry
	children []child
	infos    []entryInfo // of entries, decoded with them
}

func encodeNodeBody(n *listNode) []byte {
	var b []byte
	if n.level == 0 {
		size := 8
		for i := range n.entries {
			size += len(n.entries[i].b)
		}
		b = make([]byte, 0, size)
		b = binary.AppendUvarint(b, uint64(len(n.entries)))
		for i := range n.entries {
			b = append(b, n.entries[i].b...)
		}
		return b
	}
	b = binary.AppendUvarint(b, n.level)
	b = binary.AppendUvarint(b, uint64(len(n.children)))
	for _, c := range n.children {
		b = binary.AppendUvarint(b, c.ref.num)
		b = binary.AppendUvarint(b, c.ref.version)
		b = appendSortKey(b, c.first)
		b = binary.AppendUvarint(b, c.live)
		b = binary.AppendUvarint(b, c.deleted)
		b = binary.AppendUvarint(b, uint64(len(c.kinds)))
		b = append(b, c.kinds...)
	}
	return b
}

func decodeNodeBody(kind byte, body []byte) (*listNode, error) {
	bad := fmt.Errorf("%w: malformed listing node", ErrCorrupt)
	d := decoder{b: body}
	n := &listNode{}
	switch kind {
	case nodeLeaf:
		cnt := d.uvarint()
		if cnt > uint64(len(body)) {
			return nil, bad
		}
		n.entries = make([]rawEntry, 0, cnt)
		n.infos = make([]entryInfo, 0, cnt)
		for i := uint64(0); i < cnt && !d.err; i++ {
			e, in := d.readEntry()
			n.entries = append(n.entries, e)
			n.infos = append(n.infos, in)
		}
	case nodeInternal:
		n.level = d.uvarint()
		cnt := d.uvarint()
		if n.level == 0 || cnt > uint64(len(body)) {
			return nil, bad
		}
		for i := uint64(0); i < cnt && !d.err; i++ {
			var c child
			c.ref.num, c.ref.version = d.uvarint(), d.uvarint()
			c.first = d.sortKey()
			c.live, c.deleted = d.uvarint(), d.uvarint()
			c.kinds = d.bytes()
			n.children = append(n.children, c)
		}
	default:
		return nil, bad
	}
	if d.err || len(d.b) != 0 {
		return nil, bad
	}
	return n, nil
}

func nodeKey(num uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], num)
	return k[:]
}

// readSealedNode opens the node (or segment) ref names and checks that it
// is the version its parent names; it returns the node's type byte and
// its decompressed body.
func (v *Vault) readSealedNode(tx kv.Tx, b kv.Bucket, ref nodeRef) (byte, []byte, error) {
	k := nodeKey(ref.num)
	sealed := b.Get(k)
	if sealed == nil {
		return 0, nil, tampered(fmt.Sprintf("listing node %d is missing", ref.num))
	}
	pt, version, err := v.keys.openInto(nil, nil, bucketListing, k, sealed)
	if err != nil {
		return 0, nil, fmt.Errorf("listing node %d: %w", ref.num, err)
	}
	if version != ref.version {
		return 0, nil, tampered(fmt.Sprintf("listing node %d is at version %d, its parent names version %d", ref.num, version, ref.version))
	}
	if len(pt) < 2 {
		return 0, nil, fmt.Errorf("%w: listing node %d", ErrCorrupt, ref.num)
	}
	body, err := v.unframe(tx, pt[1:])
	if err != nil {
		return 0, nil, fmt.Errorf("listing node %d: %w", ref.num, err)
	}
	return pt[0], body, nil
}

func (v *Vault) readNode(tx kv.Tx, b kv.Bucket, ref nodeRef, level uint64) (*listNode, error) {
	typ, body, err := v.readSealedNode(tx, b, ref)
	if err != nil {
		return nil, err
	}
	n, err := decodeNodeBody(typ, body)
	if err != nil {
		return nil, fmt.Errorf("listing node %d: %w", ref.num, err)
	}
	if n.level != level {
		return nil, fmt.Errorf("%w: listing node %d is at the wrong level", ErrCorrupt, ref.num)
	}
	return n, nil
}

// writeNode seals n under num at version.
func (v *Vault) writeNode(b kv.Bucket, num, version uint64, typ byte, body []byte) error {
	frame, err := v.frame(body)
	if err != nil {
		return err
	}
	pt := make([]byte, 0, 1+len(frame))
	pt = append(append(pt, typ), frame...)
	return v.putSealed(b, bucketListing, nodeKey(num), version, pt)
}

// summarize is a node's child summary.
func summarize(ref nodeRef, n *listNode) child {
	c := child{ref: ref}
	if n.level == 0 {
		if len(n.entries) > 0 {
			c.first = n.entries[0].key
		}
		for i := range n.infos {
			if n.infos[i].deleted {
				c.deleted++
			} else {
				c.live++
				c.kinds = setKind(c.kinds, n.infos[i].kind)
			}
		}
		return c
	}
	if len(n.children) > 0 {
		c.first = n.children[0].first
	}
	for i := range n.children {
		c.live += n.children[i].live
		c.deleted += n.children[i].deleted
		c.kinds = orKinds(c.kinds, n.children[i].kinds)
	}
	return c
}

// listChange is one change of the listing: a record's new entry (put,
// nil when the record is gone) and where its previous entry was (old,
// nil if it had none).
type listChange struct {
	put    *rawEntry
	putIn  entryInfo
	old    *sortKey
	oldDel bool
}

func appendChange(b []byte, c *listChange) []byte {
	if c.put != nil {
		b = append(b, 1)
		b = append(b, c.put.b...)
	} else {
		b = append(b, 2)
	}
	if c.old == nil {
		return append(b, 0)
	}
	b = append(b, 1)
	b = appendSortKey(b, *c.old)
	if c.oldDel {
		return append(b, 1)
	}
	return append(b, 0)
}

func decodeSegment(body []byte) ([]listChange, error) {
	bad := fmt.Errorf("%w: malformed listing segment", ErrCorrupt)
	d := decoder{b: body}
	n := d.uvarint()
	if n > uint64(len(body)) {
		return nil, bad
	}
	out := make([]listChange, 0, n)
	for i := uint64(0); i < n && !d.err; i++ {
		var c listChange
		if len(d.b) == 0 {
			return nil, bad
		}
		op := d.b[0]
		d.b = d.b[1:]
		switch op {
		case 1:
			e, in := d.readEntry()
			c.put, c.putIn = &e, in
		case 2:
		default:
			return nil, bad
		}
		if len(d.b) == 0 {
			return nil, bad
		}
		has := d.b[0]
		d.b = d.b[1:]
		switch has {
		case 0:
		case 1:
			k := d.sortKey()
			c.old = &k
			if len(d.b) == 0 || d.b[0] > 1 {
				return nil, bad
			}
			c.oldDel = d.b[0] == 1
			d.b = d.b[1:]
		default:
			return nil, bad
		}
		out = append(out, c)
	}
	if d.err || len(d.b) != 0 {
		return nil, bad
	}
	return out, nil
}

// treeWriter changes the listing tree inside a write transaction.
type treeWriter struct {
	v    *Vault
	tx   kv.Tx
	b    kv.Bucket
	meta *listMeta
}

// alloc returns a new node number.
func (w *treeWriter) alloc() uint64 {
	n := w.meta.next
	w.meta.next++
	return n
}

// writeLevel writes the nodes of one level from their items (entries for
// level 0, children above), split evenly into nodes of at most max,
// reusing the numbers in reuse (rewritten at their next version) before
// new ones; numbers left over are deleted. It returns the new nodes'
// summaries.
func (w *treeWriter) writeLevel(level uint64, entries []rawEntry, infos []entryInfo, children []child, reuse []nodeRef) ([]child, error) {
	n := len(entries)
	limit := leafMax
	if level > 0 {
		n, limit = len(children), innerMax
	}
	parts := 0
	if n > 0 {
		parts = (n + limit - 1) / limit
	}
	var out []child
	for p := range parts {
		lo, hi := p*n/parts, (p+1)*n/parts
		node := &listNode{level: level}
		typ := byte(nodeInternal)
		if level == 0 {
			node.entries, node.infos, typ = entries[lo:hi], infos[lo:hi], nodeLeaf
		} else {
			node.children = children[lo:hi]
		}
		var ref nodeRef
		if p < len(reuse) {
			ref = nodeRef{reuse[p].num, reuse[p].version + 1}
		} else {
			ref = nodeRef{w.alloc(), 1}
		}
		if err := w.v.writeNode(w.b, ref.num, ref.version, typ, encodeNodeBody(node)); err != nil {
			return nil, err
		}
		out = append(out, summarize(ref, node))
	}
	for _, r := range reuse[min(parts, len(reuse)):] {
		if err := w.v.deleteSealed(w.b, bucketListing, nodeKey(r.num)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// removal is an entry to take out of the tree: where it is, and its ID.
type removal = sortKey

// apply merges removals and insertions (each sorted by key) into the
// subtree at ref and returns what replaces it at its level: nothing, one
// node or several.
func (w *treeWriter) apply(ref nodeRef, level uint64, rms []removal, ins []rawEntry, insInfo []entryInfo) ([]child, error) {
	n, err := w.v.readNode(w.tx, w.b, ref, level)
	if err != nil {
		return nil, err
	}
	if level == 0 {
		gone := make(map[string]bool, len(rms))
		for _, r := range rms {
			gone[r.id] = true
		}
		entries := make([]rawEntry, 0, len(n.entries)+len(ins))
		infos := make([]entryInfo, 0, cap(entries))
		i, j := 0, 0
		for i < len(n.entries) || j < len(ins) {
			if j == len(ins) || (i < len(n.entries) && n.entries[i].key.compare(ins[j].key) < 0) {
				if !gone[n.entries[i].key.id] {
					entries = append(entries, n.entries[i])
					infos = append(infos, n.infos[i])
				}
				i++
				continue
			}
			entries = append(entries, ins[j])
			infos = append(infos, insInfo[j])
			j++
		}
		return w.writeLevel(0, entries, infos, nil, []nodeRef{ref})
	}
	var children []child
	for i := range n.children {
		c := n.children[i]
		// Child i holds the keys from its first up to the next child's
		// first; the first child also takes what sorts before it.
		end := len(rms)
		endIns := len(ins)
		if i+1 < len(n.children) {
			next := n.children[i+1].first
			end, _ = slices.BinarySearchFunc(rms, next, func(a removal, t sortKey) int { return a.compare(t) })
			endIns, _ = slices.BinarySearchFunc(ins, next, func(a rawEntry, t sortKey) int { return a.key.compare(t) })
		}
		if end == 0 && endIns == 0 {
			children = append(children, c)
			continue
		}
		got, err := w.apply(c.ref, level-1, rms[:end], ins[:endIns], insInfo[:endIns])
		if err != nil {
			return nil, err
		}
		children = append(children, got...)
		rms, ins, insInfo = rms[end:], ins[endIns:], insInfo[endIns:]
	}
	return w.writeLevel(level, nil, nil, children, []nodeRef{ref})
}

// merge applies the changes (in the order they were made) to the tree.
func (w *treeWriter) merge(changes []listChange) error {
	if len(changes) == 0 {
		return nil
	}
	// Per record, only where its entry was before the first change and
	// where it is after the last one matter.
	type net struct {
		old  *sortKey
		put  *rawEntry
		info entryInfo
	}
	byID := make(map[string]*net, len(changes))
	var order []string
	for i := range changes {
		c := &changes[i]
		id := ""
		switch {
		case c.put != nil:
			id = c.put.key.id
		case c.old != nil:
			id = c.old.id
		default:
			continue
		}
		n, ok := byID[id]
		if !ok {
			n = &net{old: c.old}
			byID[id] = n
			order = append(order, id)
		}
		n.put, n.info = c.put, c.putIn
	}
	var rms []removal
	var ins []rawEntry
	var infos []entryInfo
	for _, id := range order {
		n := byID[id]
		if n.old != nil {
			rms = append(rms, *n.old)
		}
		if n.put != nil {
			ins = append(ins, *n.put)
			infos = append(infos, n.info)
		}
	}
	slices.SortFunc(rms, func(a, b removal) int { return a.compare(b) })
	idx := make([]int, len(ins))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return ins[a].key.compare(ins[b].key) })
	sIns := make([]rawEntry, len(ins))
	sInfos := make([]entryInfo, len(ins))
	for j, i := range idx {
		sIns[j], sInfos[j] = ins[i], infos[i]
	}
	var top []child
	var err error
	level := w.meta.height
	if w.meta.root.num == 0 {
		level = 0
		top, err = w.writeLevel(0, sIns, sInfos, nil, nil)
	} else {
		top, err = w.apply(w.meta.root, level, rms, sIns, sInfos)
	}
	if err != nil {
		return err
	}
	return w.setRoot(top, level)
}

// setRoot makes the nodes that replaced the root (at level) the tree:
// none is an empty tree, several get a parent, and a root with a single
// child gives way to it.
func (w *treeWriter) setRoot(top []child, level uint64) error {
	for len(top) > 1 {
		level++
		var err error
		if top, err = w.writeLevel(level, nil, nil, top, nil); err != nil {
			return err
		}
	}
	if len(top) == 0 {
		w.meta.root, w.meta.height = nodeRef{}, 0
		return nil
	}
	root := top[0].ref
	for level > 0 {
		n, err := w.v.readNode(w.tx, w.b, root, level)
		if err != nil {
			return err
		}
		if len(n.children) != 1 {
			break
		}
		if err := w.v.deleteSealed(w.b, bucketListing, nodeKey(root.num)); err != nil {
			return err
		}
		root = n.children[0].ref
		level--
	}
	w.meta.root, w.meta.height = root, level
	return nil
}

// readSegments returns the changes of the delta segments, in order.
func (v *Vault) readSegments(tx kv.Tx, b kv.Bucket, m *listMeta) ([]listChange, error) {
	var out []listChange
	// Every segment is read: all of them at once (one statement on a
	// database).
	keys := make([][]byte, len(m.segs))
	for i, s := range m.segs {
		keys[i] = nodeKey(s.num)
	}
	read := &readAhead{bucket: b, keys: keys, vals: kv.GetMany(b, keys)}
	for i, s := range m.segs {
		read.at = i
		typ, body, err := v.readSealedNode(tx, read, s.nodeRef)
		if err != nil {
			return nil, err
		}
		if typ != nodeSegment {
			return nil, fmt.Errorf("%w: listing segment %d", ErrCorrupt, s.num)
		}
		cs, err := decodeSegment(body)
		if err != nil {
			return nil, err
		}
		if uint64(len(cs)) != s.changes {
			return nil, fmt.Errorf("%w: listing segment %d", ErrCorrupt, s.num)
		}
		out = append(out, cs...)
	}
	return out, nil
}

// commitListing writes a transaction's listing changes: as a new delta
// segment, or, once the segments hold listMergeAt changes, by merging
// them all into the tree. m is the head's listing meta, changed in place.
func (v *Vault) commitListing(tx kv.Tx, m *listMeta, changes []listChange, merge bool) error {
	if len(changes) == 0 && (!merge || len(m.segs) == 0) {
		return nil
	}
	b := tx.Bucket([]byte{bucketListing})
	kv.SetFillPercent(b, 0.95) // nodes are rewritten in place, new ones appended
	w := &treeWriter{v: v, tx: tx, b: b, meta: m}
	pending := uint64(len(changes))
	for _, s := range m.segs {
		pending += s.changes
	}
	if !merge && pending < listMergeAt && len(m.segs) < listMaxSegments {
		body := binary.AppendUvarint(nil, uint64(len(changes)))
		for i := range changes {
			body = appendChange(body, &changes[i])
		}
		num := w.alloc()
		if err := v.writeNode(b, num, 1, nodeSegment, body); err != nil {
			return err
		}
		m.segs = append(m.segs, segRef{nodeRef{num, 1}, uint64(len(changes))})
		return nil
	}
	all, err := v.readSegments(tx, b, m)
	if err != nil {
		return err
	}
	all = append(all, changes...)
	if err := w.merge(all); err != nil {
		return err
	}
	for _, s := range m.segs {
		if err := v.deleteSealed(b, bucketListing, nodeKey(s.num)); err != nil {
			return err
		}
	}
	m.segs = nil
	return nil
}
