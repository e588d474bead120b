package fhirdoc

import (
	"time"

	"github.com/phr-project/phr/pkg/record"
)

// ShareDoc says which document a share holds.
type ShareDoc struct {
	// Summary makes the International Patient Summary (BuildIPS).
	Summary bool
	// Profile ProfileKTC makes the Kill-the-Clipboard bundle (BuildKTC)
	// with Story, the patient's own words, if any; "" a plain Bundle
	// (BuildBundle).
	Profile string
	Story   string
	// Now is the time the document is made.
	Now time.Time
}

// BuildShare makes the one file of a share of the patient's records, as
// the CLI (phr share create, update) and phrd (POST /api/v1/shares) both
// do: the IPS when d.Summary, the Kill-the-Clipboard bundle for
// ProfileKTC (checked against the profile's rules before it is given
// out: a failure is phr's bug, never the patient's), else a plain
// Bundle. Errors are BuildKTC's (ErrKTCNoPatient, pdfdoc.ErrStory) and the
// builders' own.
func BuildShare(patient record.Record, recs []record.Record, d ShareDoc) ([]byte, error) {
	switch {
	case d.Summary:
		return BuildIPS(patient, recs, d.Now)
	case d.Profile == ProfileKTC:
		content, err := BuildKTC(patient, recs, KTCOptions{Now: d.Now, Story: d.Story})
		if err != nil {
			return nil, err
		}
		if err := CheckKTCBundle(content); err != nil {
			return nil, err
		}
		return content, nil
	}
	return BuildBundle(patient, recs)
}
