package applehealth

// maxHeldBP bounds the blood pressure samples held back for pairing, and
// maxHeldBPBytes the memory they and the panel members waiting for their
// top-level copies hold; past either, top-level samples are imported on
// their own at once (and may then duplicate a panel's reading).
const (
	maxHeldBP      = 200_000
	maxHeldBPBytes = 64 << 20
)

// bpMatcher pairs blood pressure samples with their panels. Apple writes
// every member of a correlation twice: inside the <Correlation> and again
// as a top-level <Record>. The panel is imported once; top-level samples
// that belong to a panel are skipped, and the rest (a systolic reading
// without a correlation) are imported on their own at the end of the file,
// whichever comes first in the file.
type bpMatcher struct {
	fromCorr map[string]int   // panel members not yet seen at top level
	pending  map[string][]int // top-level samples not yet seen in a panel
	held     []heldBP
	bytes    int // held nodes and keys, estimated
}

type heldBP struct {
	n    *node
	line int
}

func bpKey(n *node) string {
	return n.attr("type") + "\x00" + n.attr("startDate") + "\x00" + n.attr("endDate") + "\x00" + n.attr("value") + "\x00" + sourceOf(n)
}

// topLevel takes a top-level systolic or diastolic sample. It reports
// false when the sample is to be imported now.
func (b *bpMatcher) topLevel(p *parser, n *node, line int) bool {
	k := bpKey(n)
	if c := b.fromCorr[k]; c > 0 {
		if c == 1 {
			delete(b.fromCorr, k)
		} else {
			b.fromCorr[k] = c - 1
		}
		p.sink.Skip("Observation", skipInPanel)
		return true
	}
	if len(b.held) >= maxHeldBP || b.bytes+n.size()+len(k) > maxHeldBPBytes {
		return false
	}
	b.bytes += n.size() + len(k)
	if b.pending == nil {
		b.pending = map[string][]int{}
	}
	b.pending[k] = append(b.pending[k], len(b.held))
	b.held = append(b.held, heldBP{n: n, line: line})
	return true
}

// member notes a sample inside a blood pressure panel.
func (b *bpMatcher) member(p *parser, n *node) {
	k := bpKey(n)
	if idx := b.pending[k]; len(idx) > 0 {
		b.held[idx[0]].n = nil
		if len(idx) == 1 {
			delete(b.pending, k)
		} else {
			b.pending[k] = idx[1:]
		}
		p.sink.Skip("Observation", skipInPanel)
		return
	}
	if b.fromCorr == nil {
		b.fromCorr = map[string]int{}
	}
	if _, ok := b.fromCorr[k]; ok {
		b.fromCorr[k]++
	} else if len(b.fromCorr) < maxHeldBP && b.bytes+len(k)+64 <= maxHeldBPBytes {
		b.fromCorr[k] = 1
		b.bytes += len(k) + 64
	}
}

// flush imports the held samples that no panel claimed, in file order.
func (b *bpMatcher) flush(p *parser) error {
	for _, h := range b.held {
		if h.n == nil {
			continue
		}
		if err := p.sample(h.n, h.line); err != nil {
			return err
		}
	}
	b.held, b.pending, b.fromCorr, b.bytes = nil, nil, nil, 0
	return nil
}
