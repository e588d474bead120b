package record

import (
	"strconv"
	"strings"
	"time"
	"unicode"
)

// ParseWhen parses a date or time as a patient types it, relative to now
// and in now's location: "2026-11-24", "2026-11-24T08:30",
// "2026-11-24 08:30", RFC 3339, "now", "today", "yesterday", "2h ago",
// "30m ago", "3d ago", "1w ago". A date alone, "today" and "yesterday"
// mean that whole day: a time in DayOnly, which builders write as a FHIR
// date.
func ParseWhen(s string, now time.Time) (time.Time, error) {
	t, err := parseWhen(s, now)
	if err != nil {
		return t, err
	}
	if y := t.Year(); y < MinYear || y > now.Year()+100 {
		return time.Time{}, &InputError{Msg: "date out of range (years " + strconv.Itoa(MinYear) + " to " + strconv.Itoa(now.Year()+100) + ")"}
	}
	return t, nil
}

// MinYear is the earliest year ParseWhen accepts: before it, a date is a
// typing mistake, not a health record.
const MinYear = 1850

func parseWhen(s string, now time.Time) (time.Time, error) {
	in := strings.ToLower(strings.TrimSpace(s))
	loc := now.Location()
	day := func(t time.Time) time.Time { return Day(t.Year(), t.Month(), t.Day()) }
	switch in {
	case "":
		return time.Time{}, &InputError{Msg: "empty date"}
	case "now":
		return now, nil
	case "today":
		return day(now), nil
	case "yesterday":
		return day(now.AddDate(0, 0, -1)), nil
	case "tomorrow":
		return day(now.AddDate(0, 0, 1)), nil
	}
	if rest, ok := strings.CutSuffix(in, "ago"); ok {
		d, err := parseAgo(strings.TrimSpace(rest))
		if err != nil {
			return time.Time{}, err
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, strings.ToUpper(in)); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, in); err == nil {
		return day(t), nil
	}
	for _, l := range []string{"2006-01-02t15:04:05", "2006-01-02t15:04", "2006-01-02 15:04:05", "2006-01-02 15:04"} {
		if t, err := time.ParseInLocation(l, in, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, &InputError{Msg: "unrecognized date (use 2026-11-24, 2026-11-24T08:30, today, yesterday or 2h ago)"}
}

// parseAgo parses "2h", "2 h", "90 min", "3 days", "1w".
func parseAgo(s string) (time.Duration, error) {
	i := strings.IndexFunc(s, func(r rune) bool { return !unicode.IsDigit(r) && r != '.' })
	if i <= 0 {
		return 0, &InputError{Msg: "unrecognized relative date (use e.g. 2h ago, 30m ago, 3d ago)"}
	}
	n, err := strconv.ParseFloat(s[:i], 64)
	if err != nil || n < 0 || n > 100000 {
		return 0, &InputError{Msg: "unrecognized relative date (use e.g. 2h ago, 30m ago, 3d ago)"}
	}
	var unit time.Duration
	switch strings.TrimSpace(s[i:]) {
	case "s", "sec", "secs", "second", "seconds":
		unit = time.Second
	case "m", "min", "mins", "minute", "minutes":
		unit = time.Minute
	case "h", "hr", "hrs", "hour", "hours":
		unit = time.Hour
	case "d", "day", "days":
		unit = 24 * time.Hour
	case "w", "wk", "week", "weeks":
		unit = 7 * 24 * time.Hour
	default:
		return 0, &InputError{Msg: "unknown unit in relative date (use s, m, h, d or w)"}
	}
	return time.Duration(n * float64(unit)), nil
}

// Dates as written.
//
// A FHIR date keeps its precision: "2026-06-01" is that day wherever its
// reader is, never the instant of a midnight that another time zone shows
// as the day before. A time of day keeps the offset its source wrote, and
// one written without an offset (C-CDA allows it) stays without one: phr
// shows either as the source's wall clock, never converted into the
// reader's zone. Record.Date, an instant, only sorts and filters; what
// people see comes from When.

// DayOnly is the location of a time.Time that stands for a whole day: the
// midnight UTC instant of the day, meaning the day itself. ParseWhen
// returns days in it, and the builders write them as FHIR dates.
var DayOnly = time.FixedZone("day", 0)

// IsDay reports whether t stands for a whole day (see DayOnly).
func IsDay(t time.Time) bool { return t.Location() == DayOnly }

// Day returns the day of year, month and day in DayOnly.
func Day(year int, month time.Month, day int) time.Time {
	return time.Date(year, month, day, 0, 0, 0, 0, DayOnly)
}

// Precision is how much of a date a source gave.
type Precision int

// Precisions, coarsest first.
const (
	PrecisionNone Precision = iota
	PrecisionYear
	PrecisionMonth
	PrecisionDay
	PrecisionMinute
	PrecisionSecond
)

// When is a date as its source wrote it.
type When struct {
	// Raw is the FHIR value as written ("2026-06-01",
	// "2013-08-15T10:30:00-05:00", "2013-08-15T10:30:00").
	Raw string
	// Time is the instant it starts at, in UTC for values without an
	// offset (for sorting and filtering only).
	Time      time.Time
	Precision Precision
	// Zone is true when Raw carries an offset.
	Zone bool
	// Field is the resource field it came from ("onsetDateTime",
	// "recordedDate", ...).
	Field string
}

// IsZero reports whether w holds no date.
func (w When) IsZero() bool { return w.Precision == PrecisionNone }

// ParseWhenValue parses a FHIR date, dateTime or instant as written.
func ParseWhenValue(s string) (When, error) {
	s = strings.TrimSpace(s)
	t, err := ParseDate(s)
	if err != nil {
		return When{}, err
	}
	w := When{Raw: s, Time: t}
	switch {
	case len(s) == 4:
		w.Precision = PrecisionYear
	case len(s) == 7:
		w.Precision = PrecisionMonth
	case len(s) == 10:
		w.Precision = PrecisionDay
	default:
		w.Precision = PrecisionSecond
		if len(s) == 16 || (len(s) > 16 && s[16] != ':') {
			w.Precision = PrecisionMinute
		}
		rest := s[min(len(s), 16):]
		w.Zone = strings.ContainsAny(rest, "Z+-")
	}
	return w, nil
}

// WhenOf returns the clinically relevant date of a resource as written,
// from the same fields DateOf reads.
func WhenOf(r Resource) When {
	for _, p := range datePathsOf(r) {
		if s := r.Str(p); s != "" {
			if w, err := ParseWhenValue(s); err == nil {
				w.Field = p
				return w
			}
		}
	}
	return When{}
}

// When returns the record's clinically relevant date as written in its
// resource (see WhenOf).
func (r *Record) When() When {
	if len(r.Resource) == 0 {
		return When{}
	}
	res, err := Parse(r.Resource)
	if err != nil {
		return When{}
	}
	return WhenOf(res)
}

// Date returns the calendar day as written: for a time of day, the day on
// the source's wall clock.
func (w When) Date() (year int, month time.Month, day int) {
	if w.Precision < PrecisionDay || len(w.Raw) < 10 {
		return w.Time.Date()
	}
	t, err := time.Parse(time.DateOnly, w.Raw[:10])
	if err != nil {
		return w.Time.Date()
	}
	return t.Date()
}

// Clock returns the time of day as written ("10:30"), or "" for a value
// without one.
func (w When) Clock() string {
	if w.Precision < PrecisionMinute || len(w.Raw) < 16 {
		return ""
	}
	return w.Raw[11:16]
}

// String is the date for people, as written: "2013", "2013-08",
// "2013-08-15", "2013-08-15 10:30" (the source's wall clock, whatever its
// offset and the reader's zone).
func (w When) String() string {
	switch w.Precision {
	case PrecisionNone:
		return ""
	case PrecisionYear, PrecisionMonth, PrecisionDay:
		return w.Raw
	}
	return w.Raw[:10] + " " + w.Clock()
}

// FHIRTime writes t as a FHIR value: a date for a day (see DayOnly), else
// a dateTime with its offset; "" for the zero time.
func FHIRTime(t time.Time) string {
	switch {
	case t.IsZero():
		return ""
	case IsDay(t):
		return t.Format(time.DateOnly)
	}
	return t.Format(time.RFC3339)
}

// NotFuture refuses a time after now for something that has happened (a
// dose, a reading, a symptom): a day may be today, a time up to a minute
// ahead (clocks differ).
func NotFuture(field string, t, now time.Time) error {
	if t.IsZero() {
		return nil
	}
	if IsDay(t) {
		y, m, d := now.Date()
		if t.After(Day(y, m, d)) {
			return inputErr(field, "is in the future (a day after today); give when it happened")
		}
		return nil
	}
	if t.After(now.Add(time.Minute)) {
		return inputErr(field, "is in the future; give when it happened")
	}
	return nil
}
