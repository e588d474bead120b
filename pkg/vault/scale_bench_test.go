package vault

import (
	"os"
	"testing"
	"time"

	"filippo.io/age"
)

// scaleVault opens the vault PHR_SCALE_VAULT names with the device
// identity in PHR_SCALE_IDENTITY (the vaults scripts/scale-vaults.sh
// builds), read-only, or skips.
func scaleVault(b *testing.B) (path string, ids []age.Identity) {
	path, idPath := os.Getenv("PHR_SCALE_VAULT"), os.Getenv("PHR_SCALE_IDENTITY")
	if path == "" || idPath == "" {
		b.Skip("PHR_SCALE_VAULT and PHR_SCALE_IDENTITY name a vault and its device identity")
	}
	f, err := os.Open(idPath)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if ids, err = age.ParseIdentities(f); err != nil {
		b.Fatal(err)
	}
	return path, ids
}

// BenchmarkScaleList opens a large vault and lists from it as the CLI
// does, one open per iteration:
//
//	PHR_SCALE_VAULT=... PHR_SCALE_IDENTITY=... go test -run '^$' -bench ScaleList ./pkg/vault
func BenchmarkScaleList(b *testing.B) {
	path, ids := scaleVault(b)
	for _, tc := range []struct {
		name string
		q    Query
	}{
		{"newest 5", Query{Limit: 5}},
		{"newest 5 medications", Query{Kinds: []string{"medication"}, Limit: 5}},
		{"last 7 days", Query{Since: time.Now().AddDate(0, 0, -7)}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				v, err := Open(path, Identities(ids...), &Options{ReadOnly: true})
				if err != nil {
					b.Fatal(err)
				}
				if err := v.Entries(tc.q, func(Entry) error { return nil }); err != nil {
					b.Fatal(err)
				}
				v.Close()
			}
		})
	}
}

// BenchmarkScaleCheck checks a large vault (see BenchmarkScaleList) and
// reports records per second.
func BenchmarkScaleCheck(b *testing.B) {
	path, ids := scaleVault(b)
	v, err := Open(path, Identities(ids...), &Options{ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	defer v.Close()
	n := 0
	for b.Loop() {
		rep, err := v.Check(false)
		if err != nil || !rep.OK() {
			b.Fatalf("%v %+v", err, rep)
		}
		n += rep.Records + rep.Tombstones
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}
