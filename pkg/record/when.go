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
// "30m ago", "3d ago", "1w ago". A date alone means the start of that day.
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
	day := func(t time.Time) time.Time { return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc) }
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
	for _, l := range []string{"2006-01-02t15:04:05", "2006-01-02t15:04", "2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02"} {
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
