package vault

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/phr-project/phr/pkg/kv"
	"github.com/phr-project/phr/pkg/record"
)

// benchRecords returns n realistic records: a mix of self-entered vitals,
// symptoms and medications, and imported labs and conditions (which carry
// dedup fingerprints). Each call gives fresh IDs and distinct content.
// benchRecords makes n records of several kinds, as a batch for the vault
// whose ID run is ids (nil: IDs that share nothing).
func benchRecords(tb testing.TB, n int, seed int, ids *record.IDRun) []record.Record {
	tb.Helper()
	c := record.Common{Subject: "Patient/p", Now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), IDs: ids}
	out := make([]record.Record, 0, n)
	for i := 0; i < n; i++ {
		at := c.Now.Add(-time.Duration(seed*n+i) * time.Minute)
		var r record.Record
		var err error
		switch i % 5 {
		case 0:
			v, _ := record.ParseVital("hr", fmt.Sprint(50+i%100))
			r, err = record.NewVital(c, v, at)
		case 1:
			v, _ := record.ParseVital("bp", fmt.Sprintf("%d/%d", 110+i%40, 70+i%20))
			r, err = record.NewVital(c, v, at)
		case 2:
			r, err = record.NewSymptom(c, record.Symptom{Name: fmt.Sprint("headache ", i), Severity: i % 11, At: at})
		case 3:
			r, err = record.New([]byte(fmt.Sprintf(`{"resourceType":"Observation","id":"lab-%d-%d","status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],"code":{"coding":[{"system":"http://loinc.org","code":"2345-7","display":"Glucose [Mass/volume] in Serum or Plasma"}]},"subject":{"reference":"Patient/p"},"effectiveDateTime":"%s","valueQuantity":{"value":%d,"unit":"mg/dL","system":"http://unitsofmeasure.org","code":"mg/dL"}}`, seed, i, at.Format(time.RFC3339), 70+i%60)),
				record.Provenance{Method: record.MethodImported, Importer: "fhir", System: "https://fhir.example-hospital.org", OriginalID: fmt.Sprintf("lab-%d-%d", seed, i), FileSHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"})
		case 4:
			r, err = record.NewMedication(c, record.Medication{Name: fmt.Sprint("medication ", i), Dose: "500 mg", Frequency: "twice daily", Start: at})
		}
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

const benchBatch = 1000

func benchVault(b *testing.B, noSync bool) *Vault {
	id, _ := age.GenerateX25519Identity()
	v, err := Create(filepath.Join(b.TempDir(), "bench.phr"), []SlotSpec{{Kind: SlotDevice, Recipients: []age.Recipient{id.Recipient()}}}, &Options{NoSync: noSync})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { v.Close() })
	return v
}

// benchStore measures store writing batches of benchBatch records to a
// new vault, with and without fsync, in records per second; prepare,
// untimed, makes the i-th batch for v.
func benchStore(b *testing.B, prepare func(v *Vault, i int) []record.Record, store func(v *Vault, recs []record.Record) error) {
	for _, noSync := range []bool{false, true} {
		b.Run(fmt.Sprintf("nosync=%v", noSync), func(b *testing.B) {
			v := benchVault(b, noSync)
			b.ReportAllocs()
			var total int
			for i := 0; b.Loop(); i++ {
				b.StopTimer()
				recs := prepare(v, i)
				b.StartTimer()
				if err := store(v, recs); err != nil {
					b.Fatal(err)
				}
				total += len(recs)
			}
			b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkBaseline is the raw pipeline for the same records: seal the
// encoded envelope and put it into bbolt, 1,000 per transaction, nothing
// else (no fingerprints, no index, no changes feed).
func BenchmarkBaseline(b *testing.B) {
	benchStore(b, func(v *Vault, i int) []record.Record {
		recs := benchRecords(b, benchBatch, i, v.IDs())
		for j := range recs {
			if recs[j].Provenance.Method == record.MethodImported {
				recs[j].ID = v.NewID() // as Add gives them
			}
		}
		return recs
	}, func(v *Vault, recs []record.Record) error {
		return v.db.Update(func(tx kv.Tx) error {
			rb := tx.Bucket([]byte{bucketRecords})
			for j := range recs {
				id := keyOf(recs[j].ID)
				if err := rb.Put(id, v.keys.seal(bucketRecords, id, recs[j].Version, encodeRecord(&recs[j]))); err != nil {
					return err
				}
			}
			return nil
		})
	})
}

// BenchmarkVaultPutBatch stores the same records through Vault.Add, 1,000
// per call: dedup fingerprints, kind index, changes feed and all.
func BenchmarkVaultPutBatch(b *testing.B) {
	benchStore(b, func(v *Vault, i int) []record.Record {
		return benchRecords(b, benchBatch, i, v.IDs())
	}, func(v *Vault, recs []record.Record) error {
		_, err := v.Add(recs)
		return err
	})
}

// BenchmarkOpenDevice opens (and closes) a vault with a device identity.
func BenchmarkOpenDevice(b *testing.B) {
	id, _ := age.GenerateX25519Identity()
	path := filepath.Join(b.TempDir(), "open.phr")
	v, err := Create(path, []SlotSpec{
		{Kind: SlotPassphrase, Passphrase: "bench passphrase"},
		{Kind: SlotDevice, Recipients: []age.Recipient{id.Recipient()}},
		{Kind: SlotRecovery, RecoveryCode: NewRecoveryCode()},
	}, nil)
	if err != nil {
		b.Fatal(err)
	}
	v.Add(benchRecords(b, 5000, 0, v.IDs()))
	v.Close()
	b.ReportAllocs()
	for b.Loop() {
		v, err := Open(path, Identities(id), &Options{ReadOnly: true})
		if err != nil {
			b.Fatal(err)
		}
		v.Close()
	}
}

var listVaults sync.Map // total records -> path

// listVault builds (once per process) a vault of total records of which
// 1,000 are medications, and returns its path and identity.
func listVault(b *testing.B, total int) (string, age.Identity) {
	type built struct {
		path string
		id   age.Identity
	}
	if x, ok := listVaults.Load(total); ok {
		return x.(built).path, x.(built).id
	}
	id, _ := age.GenerateX25519Identity()
	path := filepath.Join(b.TempDir(), fmt.Sprintf("list-%d.phr", total))
	v, err := Create(path, []SlotSpec{{Kind: SlotDevice, Recipients: []age.Recipient{id.Recipient()}}}, &Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	meds := 0
	for seed := 0; seed*benchBatch < total; seed++ {
		recs := benchRecords(b, benchBatch, seed, v.IDs())
		// Keep exactly 1,000 medications whatever the total.
		for i := range recs {
			if recs[i].Kind == record.KindMedication {
				if meds >= 1000 {
					v2, _ := record.ParseVital("spo2", "97")
					recs[i], _ = record.NewVital(record.Common{}, v2, time.Unix(int64(seed*benchBatch+i), 0))
				} else {
					meds++
				}
			}
		}
		if _, err := v.Add(recs); err != nil {
			b.Fatal(err)
		}
	}
	v.Close()
	// b.TempDir is removed when this benchmark ends, so the cache only
	// serves its own sub-benchmarks.
	return path, id
}

// BenchmarkListKind lists the 1,000 medications of vaults of 10,000 and
// 100,000 records: the time should not grow with the unrelated records.
func BenchmarkListKind(b *testing.B) {
	for _, total := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("records=%d", total), func(b *testing.B) {
			path, id := listVault(b, total)
			v, err := Open(path, Identities(id), &Options{ReadOnly: true})
			if err != nil {
				b.Fatal(err)
			}
			defer v.Close()
			b.ReportAllocs()
			for b.Loop() {
				recs, err := v.List(Query{Kinds: []string{record.KindMedication}})
				if err != nil || len(recs) != 1000 {
					b.Fatalf("%d records, %v", len(recs), err)
				}
			}
		})
	}
}

// BenchmarkListAll lists every record of a 100,000-record vault.
func BenchmarkListAll(b *testing.B) {
	path, id := listVault(b, 100_000)
	v, err := Open(path, Identities(id), &Options{ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	defer v.Close()
	for b.Loop() {
		recs, err := v.List(Query{})
		if err != nil || len(recs) != 100_000 {
			b.Fatalf("%d records, %v", len(recs), err)
		}
	}
}

// backupVault builds (once) a 100,000-record vault and a backup of it.
var backupOnce struct {
	sync.Once
	path   string
	id     *age.X25519Identity
	backup []byte
	plain  int64
}

func backupFixture(b *testing.B) (string, *age.X25519Identity, []byte) {
	backupOnce.Do(func() {
		dir, err := os.MkdirTemp("", "phr-bench-backup-")
		if err != nil {
			b.Fatal(err)
		}
		id, _ := age.GenerateX25519Identity()
		path := filepath.Join(dir, "backup.phr")
		v, err := Create(path, []SlotSpec{{Kind: SlotDevice, Recipients: []age.Recipient{id.Recipient()}}}, &Options{NoSync: true})
		if err != nil {
			b.Fatal(err)
		}
		for seed := 0; seed < 100; seed++ {
			if _, err := v.Add(benchRecords(b, benchBatch, seed, v.IDs())); err != nil {
				b.Fatal(err)
			}
		}
		var buf bytes.Buffer
		if _, err := v.Backup(&buf, []age.Recipient{id.Recipient()}, false); err != nil {
			b.Fatal(err)
		}
		v.Close()
		backupOnce.path, backupOnce.id, backupOnce.backup = path, id, buf.Bytes()
	})
	return backupOnce.path, backupOnce.id, backupOnce.backup
}

// BenchmarkBackup100k writes an age-encrypted backup of 100,000 records;
// MB/s counts the vault file's size.
func BenchmarkBackup100k(b *testing.B) {
	path, id, _ := backupFixture(b)
	st, _ := os.Stat(path)
	v, err := Open(path, Identities(id), &Options{ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	defer v.Close()
	b.SetBytes(st.Size())
	for b.Loop() {
		if _, err := v.Backup(io.Discard, []age.Recipient{id.Recipient()}, false); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(100_000*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkRestore100k rebuilds a vault from that backup.
func BenchmarkRestore100k(b *testing.B) {
	path, id, backup := backupFixture(b)
	st, _ := os.Stat(path)
	b.SetBytes(st.Size())
	for i := 0; b.Loop(); i++ {
		dest := filepath.Join(b.TempDir(), fmt.Sprintf("r%d.phr", i))
		if _, _, err := Restore(bytes.NewReader(backup), []age.Identity{id}, dest, []SlotSpec{{Kind: SlotDevice, Recipients: []age.Recipient{id.Recipient()}}}, false); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(100_000*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkAgeEncryptSameSize is the yardstick: age encrypting a file the
// size of the 100,000-record vault.
func BenchmarkAgeEncryptSameSize(b *testing.B) {
	path, id, _ := backupFixture(b)
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		w, err := age.Encrypt(io.Discard, id.Recipient())
		if err != nil {
			b.Fatal(err)
		}
		w.Write(data)
		w.Close()
	}
}

// BenchmarkRotate100k reseals a 100,000-record vault under a new key.
func BenchmarkRotate100k(b *testing.B) {
	path, id, _ := backupFixture(b)
	data, _ := os.ReadFile(path)
	copyPath := filepath.Join(b.TempDir(), "rotate.phr")
	os.WriteFile(copyPath, data, 0o600)
	v, err := Open(copyPath, Identities(id), &Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer v.Close()
	for b.Loop() {
		if err := v.Rotate(RotateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(100_000*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkOpenLarge opens a large vault (PHR_BENCH_RECORDS records,
// default 100,000; the figures in docs/security.md are for 3,000,000):
// Open checks the head, the key slots and the settings and must not grow
// with the records. Verify, which a selection by kind runs once per open
// vault, reads every value's header.
func BenchmarkOpenLarge(b *testing.B) {
	total := 100_000
	if s := os.Getenv("PHR_BENCH_RECORDS"); s != "" {
		fmt.Sscan(s, &total)
	}
	id, _ := age.GenerateX25519Identity()
	path := filepath.Join(b.TempDir(), "large.phr")
	v, err := Create(path, []SlotSpec{{Kind: SlotDevice, Recipients: []age.Recipient{id.Recipient()}}}, &Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	for seed := 0; seed*benchBatch < total; seed++ {
		if _, err := v.Add(benchRecords(b, benchBatch, seed, v.IDs())); err != nil {
			b.Fatal(err)
		}
	}
	v.Close()
	st, _ := os.Stat(path)
	b.Logf("built %d records, %d MB, in %v", total, st.Size()>>20, time.Since(start).Round(time.Second))
	for _, ro := range []bool{true, false} {
		b.Run(fmt.Sprintf("open/readonly=%v", ro), func(b *testing.B) {
			for b.Loop() {
				v, err := Open(path, Identities(id), &Options{ReadOnly: ro, NoSync: true})
				if err != nil {
					b.Fatal(err)
				}
				v.Close()
			}
		})
	}
	b.Run("verify", func(b *testing.B) {
		v, err := Open(path, Identities(id), &Options{ReadOnly: true})
		if err != nil {
			b.Fatal(err)
		}
		defer v.Close()
		for b.Loop() {
			v.verified.Store(false)
			if err := v.Verify(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
