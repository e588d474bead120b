package record

import (
	"strconv"
	"testing"
)

// TestVitalUnits: every unit VitalUnits offers is one ParseVital takes,
// and stores as that UCUM unit; each kind offers each UCUM unit once.
func TestVitalUnits(t *testing.T) {
	// A plausible reading per UCUM unit.
	sample := map[string]float64{"/min": 70, "kg": 70, "[lb_av]": 154, "Cel": 37.2, "[degF]": 99, "mmol/L": 5.4, "mg/dL": 97, "%": 97}
	want := map[string]int{"bp": 1, "hr": 1, "weight": 2, "temp": 2, "glucose": 2, "spo2": 1}
	for _, kind := range VitalKinds {
		units := VitalUnits(kind)
		if len(units) != want[kind] {
			t.Errorf("%s: %d units %v, want %d", kind, len(units), units, want[kind])
		}
		seen := map[string]bool{}
		for _, u := range units {
			if seen[u.UCUM] {
				t.Errorf("%s: %s twice", kind, u.UCUM)
			}
			seen[u.UCUM] = true
			value := "120/80" + u.Typed
			if kind != "bp" {
				value = strconv.FormatFloat(sample[u.UCUM], 'f', -1, 64) + u.Typed
			}
			v, err := ParseVital(kind, value)
			if err != nil {
				t.Errorf("%s %q: %v", kind, value, err)
				continue
			}
			if v.Unit != u.UCUM || v.Display != u.Display {
				t.Errorf("%s %q: stored %s (%s), offered %s (%s)", kind, value, v.Unit, v.Display, u.UCUM, u.Display)
			}
		}
	}
	if VitalUnits("nonsense") == nil || len(VitalUnits("nonsense")) != 0 {
		t.Error("an unknown kind has no units")
	}
}
