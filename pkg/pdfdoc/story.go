package pdfdoc

import (
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/phr-project/phr/pkg/record"
)

// MaxStory is the longest story Story sets, in bytes: some twenty pages.
const MaxStory = 64 << 10

// ErrStory is returned for a story that is empty, too long or not UTF-8
// text.
var ErrStory = errors.New("pdfdoc: the story must be UTF-8 text of 1 byte to 64 KiB")

// Story sets text, a note the patient wrote in their own words, as a PDF
// headed by the patient's name and birth date and the day it was shared
// (now). Paragraphs and line breaks are kept; control characters are
// dropped.
func Story(patient record.Record, text string, now time.Time) ([]byte, error) {
	if now.IsZero() {
		return nil, ErrNoTime
	}
	text = strings.TrimSpace(strings.ReplaceAll(text, "\r\n", "\n"))
	if text == "" || len(text) > MaxStory || !utf8.ValidString(text) {
		return nil, ErrStory
	}
	var pat record.Resource
	if len(patient.Resource) > 0 {
		p, err := record.Parse(patient.Resource)
		if err != nil {
			return nil, err
		}
		pat = p
	}
	title := "In my own words"
	w := newWriter(title, "A note by the patient, shared with phr", now)
	name := patientName(pat)
	w.footLeft = title + " · " + name + " · shared " + now.Format("2006-01-02")
	w.text(title, 10, "B", grey)
	w.f.Ln(0.5)
	w.text(name, 18, "B", black)
	w.f.Ln(0.8)
	if pat != nil && pat.Str("birthDate") != "" {
		w.text("Born "+pat.Str("birthDate"), 10.5, "", black)
	}
	w.text("Written by the patient; shared "+now.Format("2006-01-02 15:04")+" with phr. This note is the patient's account, not a clinical record.", 8.5, "", grey)
	w.f.Ln(3)
	w.f.SetFont(font, "", 11)
	w.color(black)
	for _, para := range strings.Split(cleanText(text, true), "\n") {
		if strings.TrimSpace(para) == "" {
			w.f.Ln(2.5)
			continue
		}
		w.f.MultiCell(w.width, 5.2, para, "", "L", false)
	}
	return w.bytes()
}
