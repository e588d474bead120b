package vault

import (
	"errors"
	"fmt"
	"time"

	"github.com/phr-project/phr/pkg/record"
)

// Selection says which records a share holds: the records with the given
// IDs (or unique ID prefixes), or those of the given kinds dated since a
// time (all kinds when none is given). Summary marks a patient summary
// (IPS), which may hold no records at all; so may a share that carries
// something else (a patient's story), NoneOK.
type Selection struct {
	IDs     []string
	Kinds   []string
	Since   time.Time
	Summary bool
	NoneOK  bool
}

// SelectionError is a selection that cannot be made (ids with types, an
// unknown or deleted record, nothing matching). Callers show it as the
// user's mistake: a usage error, HTTP 400.
type SelectionError struct{ Msg string }

func (e *SelectionError) Error() string { return e.Msg }

// SelectForShare returns the vault owner's Patient (the zero Record when
// the vault names none) and the records sel selects, for a share. The one
// selection both phr and phrd use: the records are checked against the
// query after they are unsealed (List does), and Patient records are never
// among them: the owner goes into a share once, as its subject, and other
// Patients only where a shared record refers to them.
func (v *Vault) SelectForShare(sel Selection) (record.Record, []record.Record, error) {
	patient, err := v.Patient()
	if err != nil && !errors.Is(err, ErrNoPatient) {
		return record.Record{}, nil, err
	}
	var recs []record.Record
	if len(sel.IDs) > 0 {
		if len(sel.Kinds) > 0 || sel.Summary || !sel.Since.IsZero() {
			return patient, nil, &SelectionError{"IDs choose the records themselves: no types, dates or summary with them"}
		}
		for _, id := range sel.IDs {
			full, err := v.Resolve(id)
			if errors.Is(err, ErrNotFound) || errors.Is(err, ErrAmbiguous) {
				return patient, nil, &SelectionError{fmt.Sprintf("no record %s (or several start so)", id)}
			}
			if err != nil {
				return patient, nil, err
			}
			r, err := v.Get(full)
			if err != nil {
				return patient, nil, err
			}
			if r.Deleted {
				return patient, nil, &SelectionError{fmt.Sprintf("record %s was deleted", r.ID)}
			}
			recs = append(recs, r)
		}
	} else {
		q := Query{Since: sel.Since}
		for _, k := range sel.Kinds {
			q.Kinds = append(q.Kinds, record.NormalizeKind(k))
		}
		if recs, err = v.List(q); err != nil {
			return patient, nil, err
		}
	}
	out := recs[:0]
	for _, r := range recs {
		if r.Kind != record.KindPatient && r.ResourceType != "Patient" {
			out = append(out, r)
		}
	}
	if len(out) == 0 && !sel.Summary && !sel.NoneOK {
		return patient, nil, &SelectionError{"no records match: nothing to share"}
	}
	return patient, out, nil
}
