package record

import (
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// Patient identity: does a file's Patient describe the vault's owner?
//
// A file is about someone else when its Patient has another birth date
// than the owner's (compared at the precision both give), or when it names
// someone else and shares none of the owner's identifiers. Names match
// when a family name and a given name are the same, or the whole names
// are, letter case, accents and punctuation aside; a name that gives only
// a text is compared by its words. Facts one side does not give are not
// compared: a vault whose owner has no birth date yet accepts any.

// Mismatch says how a file's Patient differs from the owner: the facts
// that differ, by name ("birth date", "name", "sex"), never their values.
type Mismatch []string

// JoinFacts joins fact names as a sentence does: "a", "a and b",
// "a, b and c".
func JoinFacts(facts []string) string {
	switch len(facts) {
	case 0:
		return ""
	case 1:
		return facts[0]
	}
	return strings.Join(facts[:len(facts)-1], ", ") + " and " + facts[len(facts)-1]
}

// ComparePatients returns how other differs from owner in ways that make
// it another person (birth date; name without a shared identifier), or
// nil when it may well be the owner. A differing sex is reported beside
// one of those, never alone (a record may state it another way).
func ComparePatients(owner, other Resource) Mismatch {
	var m Mismatch
	ob, xb := owner.Str("birthDate"), other.Str("birthDate")
	if ob != "" && xb != "" {
		n := min(len(ob), len(xb))
		if ob[:n] != xb[:n] {
			m = append(m, "birth date")
		}
	}
	on, xn := patientNames(owner), patientNames(other)
	if len(on) > 0 && len(xn) > 0 && !namesMatch(on, xn) && !sharesIdentifier(owner, other) {
		m = append(m, "name")
	}
	if len(m) > 0 {
		og, xg := owner.Str("gender"), other.Str("gender")
		if og != "" && xg != "" && og != "unknown" && xg != "unknown" && og != xg {
			m = append(m, "sex")
		}
	}
	return m
}

// personName is a name reduced for comparison: folded words.
type personName struct {
	family string
	given  []string
	words  []string // every word, for names given only as text
}

func patientNames(r Resource) []personName {
	var out []personName
	for _, v := range r.List("name") {
		m, ok := v.(map[string]any)
		if !ok {
			continue
		}
		var n personName
		if f, ok := m["family"].(string); ok {
			n.family = strings.Join(foldWords(f), " ")
		}
		if gs, ok := m["given"].([]any); ok {
			for _, g := range gs {
				if s, ok := g.(string); ok {
					n.given = append(n.given, foldWords(s)...)
				}
			}
		}
		if t, ok := m["text"].(string); ok {
			n.words = foldWords(t)
		}
		if len(n.words) == 0 {
			n.words = append(append([]string(nil), n.given...), foldWords(n.family)...)
		}
		if n.family != "" || len(n.words) > 0 {
			out = append(out, n)
		}
	}
	return out
}

func namesMatch(a, b []personName) bool {
	for _, x := range a {
		for _, y := range b {
			if x.family != "" && y.family != "" {
				if x.family == y.family && (len(x.given) == 0 || len(y.given) == 0 || overlap(x.given, y.given)) {
					return true
				}
				continue
			}
			// One of them has only a text: its words must hold the
			// other's first and last word.
			if wordsCover(x.words, y.words) || wordsCover(y.words, x.words) {
				return true
			}
		}
	}
	return false
}

func overlap(a, b []string) bool {
	for _, x := range a {
		for _, y := range b {
			if x == y {
				return true
			}
		}
	}
	return false
}

// wordsCover reports whether all holds the first and the last of some
// (a name's given name and family name).
func wordsCover(all, some []string) bool {
	if len(some) == 0 || len(all) == 0 {
		return false
	}
	has := func(w string) bool {
		for _, x := range all {
			if x == w {
				return true
			}
		}
		return false
	}
	return has(some[0]) && has(some[len(some)-1])
}

// foldWords splits s into lower-case words without accents or
// punctuation: "Ramírez-Ortega, José" -> ramirez ortega jose.
func foldWords(s string) []string {
	var b strings.Builder
	for _, r := range norm.NFD.String(s) {
		switch {
		case unicode.Is(unicode.Mn, r):
			// a combining accent: dropped
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(unicode.ToLower(r))
		default:
			b.WriteByte(' ')
		}
	}
	return strings.Fields(b.String())
}

func sharesIdentifier(a, b Resource) bool {
	ids := map[string]bool{}
	for _, v := range a.List("identifier") {
		if m, ok := v.(map[string]any); ok {
			sys, _ := m["system"].(string)
			val, _ := m["value"].(string)
			if val != "" {
				ids[sys+"|"+strings.TrimSpace(val)] = true
			}
		}
	}
	for _, v := range b.List("identifier") {
		if m, ok := v.(map[string]any); ok {
			sys, _ := m["system"].(string)
			val, _ := m["value"].(string)
			if val != "" && ids[sys+"|"+strings.TrimSpace(val)] {
				return true
			}
		}
	}
	return false
}

// FillPatient copies into owner the identifying facts it lacks and from
// gives (name, birth date, sex), and returns which it copied. owner is
// changed in place.
func FillPatient(owner, from Resource) []string {
	var filled []string
	if len(patientNames(owner)) == 0 {
		if names := from.List("name"); len(patientNames(from)) > 0 {
			owner["name"] = names
			filled = append(filled, "name")
		}
	}
	if owner.Str("birthDate") == "" {
		if bd := from.Str("birthDate"); bd != "" {
			owner["birthDate"] = bd
			filled = append(filled, "birth date")
		}
	}
	if g := owner.Str("gender"); g == "" || g == "unknown" {
		if g := from.Str("gender"); g != "" && g != "unknown" {
			owner["gender"] = g
			filled = append(filled, "sex")
		}
	}
	return filled
}
