package vault

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/phr-project/phr/pkg/record"
)

// envelopeVersion is the first byte of an encoded (unsealed) record.
const envelopeVersion = 1

// encodeRecord serializes a record envelope: a version byte, then each
// field in a fixed order, strings and bytes as uvarint length + bytes,
// numbers as varints, times as Unix nanoseconds (0 for the zero time). The
// resource JSON goes last, verbatim.
func encodeRecord(r *record.Record) []byte {
	p := &r.Provenance
	n := 64 + len(r.ID) + len(r.Kind) + len(r.ResourceType) + len(r.Display) + len(p.Method) + len(p.Author) +
		len(p.Importer) + len(p.File) + len(p.FileSHA256) + len(p.System) + len(p.OriginalID) + len(r.Resource)
	b := make([]byte, 0, n+8*binary.MaxVarintLen64)
	b = append(b, envelopeVersion)
	for _, s := range []string{r.ID, r.Kind, r.ResourceType, r.Display, p.Method, p.Author, p.Importer, p.File, p.FileSHA256, p.System, p.OriginalID} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	var flags uint64
	if p.Verified {
		flags |= 1
	}
	if r.Deleted {
		flags |= 2
	}
	if p.PatientMismatch {
		flags |= flagPatientMismatch
	}
	times := []time.Time{r.Date, r.CreatedAt, r.UpdatedAt}
	if !r.UpdatedAt.IsZero() && r.UpdatedAt.Equal(r.CreatedAt) && r.UpdatedAt.Location() == r.CreatedAt.Location() {
		// A record never changed: its update time is its entry time,
		// not written twice (format 4).
		flags |= flagUpdatedIsCreated
		times[2] = time.Time{}
	}
	for i, t := range times {
		if !t.IsZero() {
			flags |= 4 << i
		}
	}
	b = binary.AppendUvarint(b, flags)
	for _, t := range times {
		if !t.IsZero() {
			b = binary.AppendVarint(b, t.Unix())
			b = binary.AppendUvarint(b, uint64(t.Nanosecond()))
		}
	}
	b = binary.AppendUvarint(b, r.Version)
	b = binary.AppendUvarint(b, r.Seq)
	return append(b, r.Resource...)
}

var errEnvelope = errors.New("malformed record envelope")

// flagPatientMismatch is the envelope flag of Provenance.PatientMismatch
// (format 3). Bits 1 and 2 are Verified and Deleted, 4, 8 and 16 say
// which times follow.
const flagPatientMismatch = 32

// flagUpdatedIsCreated says that the update time is the entry time, and
// is not written (format 4).
const flagUpdatedIsCreated = 64

func decodeRecord(b []byte) (record.Record, error) {
	var r record.Record
	if len(b) == 0 || b[0] != envelopeVersion {
		return r, errEnvelope
	}
	b = b[1:]
	p := &r.Provenance
	for _, s := range []*string{&r.ID, &r.Kind, &r.ResourceType, &r.Display, &p.Method, &p.Author, &p.Importer, &p.File, &p.FileSHA256, &p.System, &p.OriginalID} {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return r, errEnvelope
		}
		*s = string(b[k : k+int(n)])
		b = b[k+int(n):]
	}
	flags, k := binary.Uvarint(b)
	if k <= 0 {
		return r, errEnvelope
	}
	b = b[k:]
	p.Verified = flags&1 != 0
	r.Deleted = flags&2 != 0
	p.PatientMismatch = flags&flagPatientMismatch != 0
	for i, t := range []*time.Time{&r.Date, &r.CreatedAt, &r.UpdatedAt} {
		if flags&(4<<i) == 0 {
			continue
		}
		var ok bool
		if *t, b, ok = decodeTime(b); !ok {
			return r, errEnvelope
		}
	}
	if flags&flagUpdatedIsCreated != 0 {
		r.UpdatedAt = r.CreatedAt
	}
	for _, u := range []*uint64{&r.Version, &r.Seq} {
		v, k := binary.Uvarint(b)
		if k <= 0 {
			return r, errEnvelope
		}
		b = b[k:]
		*u = v
	}
	if len(b) > 0 {
		// b is the tail of the caller's freshly unsealed buffer, which
		// nothing else holds: no copy needed. Cap it so appends copy.
		r.Resource = b[:len(b):len(b)]
	}
	return r, nil
}

// decodeTime reads a time of an envelope (seconds, then nanoseconds)
// from the start of b, and returns it and the rest of b.
func decodeTime(b []byte) (time.Time, []byte, bool) {
	sec, k := binary.Varint(b)
	if k <= 0 {
		return time.Time{}, b, false
	}
	b = b[k:]
	ns, k := binary.Uvarint(b)
	if k <= 0 || ns >= 1e9 {
		return time.Time{}, b, false
	}
	return time.Unix(sec, int64(ns)).UTC(), b[k:], true
}

// decodeFacts reads from an envelope only what the listing index keeps
// (metaEntry), without copying the rest: a scan of the whole vault
// decodes every record this way. id is the record ID its key gives, which
// the envelope must carry; kinds interns kind names across calls.
func decodeFacts(b []byte, id string, kinds map[string]string) (metaEntry, error) {
	var e metaEntry
	if len(b) == 0 || b[0] != envelopeVersion {
		return e, errEnvelope
	}
	b = b[1:]
	for i := range 11 { // the strings, as decodeRecord reads them
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return e, errEnvelope
		}
		s := b[k : k+int(n)]
		switch i {
		case 0:
			if string(s) != id {
				return e, errEnvelope
			}
			e.id = id
		case 1:
			kind, ok := kinds[string(s)]
			if !ok {
				kind = string(s)
				kinds[kind] = kind
			}
			e.kind = kind
		}
		b = b[k+int(n):]
	}
	flags, k := binary.Uvarint(b)
	if k <= 0 {
		return e, errEnvelope
	}
	b = b[k:]
	e.deleted = flags&2 != 0
	var times [3]time.Time
	for i := range times {
		if flags&(4<<i) == 0 {
			continue
		}
		var ok bool
		if times[i], b, ok = decodeTime(b); !ok {
			return e, errEnvelope
		}
	}
	e.date, e.created = times[0], times[1]
	v, k := binary.Uvarint(b)
	if k <= 0 {
		return e, errEnvelope
	}
	e.version = v
	return e, nil
}
