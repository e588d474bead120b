package vault

import (
	"testing"

	"github.com/phr-project/phr/pkg/record"
)

// BenchmarkGet reads 100 of the medications of a 10,000-record vault one
// by one with Get (one read transaction each), as a viewer opening
// records does.
func BenchmarkGet(b *testing.B) {
	path, id := listVault(b, 10_000)
	v, err := Open(path, Identities(id), &Options{ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	defer v.Close()
	meds, err := v.List(Query{Kinds: []string{record.KindMedication}})
	if err != nil || len(meds) != 1000 {
		b.Fatalf("%d records, %v", len(meds), err)
	}
	meds = meds[:100]
	b.ReportAllocs()
	for b.Loop() {
		for i := range meds {
			if _, err := v.Get(meds[i].ID); err != nil {
				b.Fatal(err)
			}
		}
	}
}
