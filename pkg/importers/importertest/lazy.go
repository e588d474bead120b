package importertest

import "io"

// LazyReader yields its parts in order, each part's pattern repeated to
// its size. It holds only the patterns, so tests can feed gigabytes
// without making them; Consumed says how much was read.
type LazyReader struct {
	parts []Part
	read  int64
}

// Part is a run of bytes of a LazyReader.
type Part struct {
	pattern []byte
	size    int64 // bytes left in this part
	pos     int   // position in pattern
}

// Once is s, once.
func Once(s string) Part { return Part{pattern: []byte(s), size: int64(len(s))} }

// Fill is pattern repeated (and cut) to size bytes.
func Fill(pattern string, size int64) Part {
	p := []byte(pattern)
	for len(p) < 4096 {
		p = append(p, pattern...)
	}
	return Part{pattern: p[:len(p)/len(pattern)*len(pattern)], size: size}
}

// Lazy returns a reader of the parts, in order.
func Lazy(parts ...Part) *LazyReader { return &LazyReader{parts: parts} }

// Read implements io.Reader.
func (l *LazyReader) Read(b []byte) (int, error) {
	n := 0
	for n < len(b) && len(l.parts) > 0 {
		p := &l.parts[0]
		if p.size == 0 {
			l.parts = l.parts[1:]
			continue
		}
		chunk := p.pattern[p.pos:]
		if int64(len(chunk)) > p.size {
			chunk = chunk[:p.size]
		}
		m := copy(b[n:], chunk)
		n += m
		p.size -= int64(m)
		p.pos = (p.pos + m) % len(p.pattern)
		l.read += int64(m)
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// Consumed is the number of bytes read so far.
func (l *LazyReader) Consumed() int64 { return l.read }
