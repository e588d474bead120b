package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/phr-project/phr/pkg/record"
	"github.com/phr-project/phr/pkg/vault"
)

// buildPHR compiles the phr binary into dir.
func buildPHR(b *testing.B, dir string) string {
	b.Helper()
	bin := filepath.Join(dir, "phr")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// benchEnv makes a vault of n records (of which meds are medications)
// opened by a device identity, and returns the environment for phr.
func benchEnv(b *testing.B, dir string, n, meds int) []string {
	b.Helper()
	id, _ := age.GenerateX25519Identity()
	cfg := filepath.Join(dir, "config")
	if err := writePrivate(filepath.Join(cfg, "device-identity.txt"), []byte(id.String()+"\n")); err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(dir, "vault.phr")
	v, err := vault.Create(path, []vault.SlotSpec{{Kind: vault.SlotDevice, Recipients: []age.Recipient{id.Recipient()}}}, &vault.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	c := record.Common{Subject: "Patient/p"}
	start := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	batch := make([]record.Record, 0, 1000)
	for i := 0; i < n; i++ {
		at := start.Add(time.Duration(i) * time.Hour)
		var r record.Record
		switch {
		case i < meds:
			r, err = record.NewMedication(c, record.Medication{Name: fmt.Sprint("medication ", i), Dose: "10 mg", Start: at})
		case i%3 == 0:
			r, err = record.NewSymptom(c, record.Symptom{Name: "fatigue", Severity: i % 11, At: at})
		default:
			vt, _ := record.ParseVital("hr", fmt.Sprint(50+i%90))
			r, err = record.NewVital(c, vt, at)
		}
		if err != nil {
			b.Fatal(err)
		}
		batch = append(batch, r)
		if len(batch) == cap(batch) || i == n-1 {
			if _, err := v.Add(batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	v.Close()
	return append(os.Environ(), "PHR_VAULT="+path, "PHR_CONFIG_DIR="+cfg, "PHR_PASSPHRASE=", "PHR_IDENTITY=")
}

func runBin(b *testing.B, bin string, env []string, args ...string) {
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("phr %v: %v\n%s", args, err, out)
	}
}

// BenchmarkCLILog is one `phr log vital hr 72` from process start to exit,
// on a vault of 10,000 records opened with the device identity.
func BenchmarkCLILog(b *testing.B) {
	dir := b.TempDir()
	bin := buildPHR(b, dir)
	env := benchEnv(b, dir, 10_000, 100)
	for b.Loop() {
		runBin(b, bin, env, "log", "vital", "hr", "72")
	}
}

// BenchmarkCLIListMedication is `phr list medication` from process start
// to exit, with 1,000 medications among 10,000 and 100,000 records.
func BenchmarkCLIListMedication(b *testing.B) {
	dir := b.TempDir()
	bin := buildPHR(b, dir)
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			env := benchEnv(b, b.TempDir(), n, 1000)
			for b.Loop() {
				runBin(b, bin, env, "list", "medication")
			}
		})
	}
}
