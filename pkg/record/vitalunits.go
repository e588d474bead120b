package record

import (
	"cmp"
	"slices"
)

// VitalUnit is a unit a reading of one vital kind may be given in (for a
// form that offers them).
type VitalUnit struct {
	Typed   string `json:"typed"`   // what ParseVital takes after the number ("kg", "c"); "" for none
	UCUM    string `json:"ucum"`    // the UCUM code stored ("kg", "Cel")
	Display string `json:"display"` // as people write it ("kg", "°C")
}

// VitalUnits lists the units ParseVital accepts for kind, one per UCUM
// unit (the shortest way to type each), sorted by how they are written. Blood pressure
// has one: mmHg, typed as "120/80".
func VitalUnits(kind string) []VitalUnit {
	if kind == "bp" {
		return []VitalUnit{{Typed: "", UCUM: "mm[Hg]", Display: "mmHg"}}
	}
	best := map[string]VitalUnit{}
	for typed, u := range vitalUnits[kind] {
		cur, ok := best[u.ucum]
		if !ok || len(typed) < len(cur.Typed) || len(typed) == len(cur.Typed) && typed < cur.Typed {
			best[u.ucum] = VitalUnit{Typed: typed, UCUM: u.ucum, Display: u.display}
		}
	}
	out := make([]VitalUnit, 0, len(best))
	for _, u := range best {
		out = append(out, u)
	}
	slices.SortFunc(out, func(a, b VitalUnit) int { return cmp.Compare(a.Display, b.Display) })
	return out
}
