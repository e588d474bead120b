package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"filippo.io/age"
	"github.com/phr-project/phr/pkg/record"
	"github.com/phr-project/phr/pkg/vault"
	"github.com/spf13/cobra"
)

func newDemoCommand(g *globals) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Try phr on a throw-away vault filled with two weeks of sample data",
		Long: `demo creates a vault in a new temporary directory (or --dir), fills it with
two weeks of a fictional patient's medications, doses, symptoms and vitals,
and shows the list and the timeline. Your own vault is not touched. The
output ends with the commands to explore the demo vault further.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return runDemo(g, dir) },
	}
	cmd.Flags().StringVar(&dir, "dir", "", "directory for the demo vault (default: a new temporary directory)")
	return cmd
}

func runDemo(g *globals, dir string) error {
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "phr-demo-"); err != nil {
			return err
		}
	}
	path := filepath.Join(dir, "vault.phr")
	idPath := filepath.Join(dir, "identity.txt")
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return err
	}
	if err := writePrivate(idPath, []byte(id.String()+"\n")); err != nil {
		return err
	}
	v, err := vault.Create(path, []vault.SlotSpec{{Kind: vault.SlotDevice, Label: "demo", Recipients: []age.Recipient{id.Recipient()}}}, nil)
	if err != nil {
		return err
	}
	n, err := fillDemo(v, time.Now())
	v.Close()
	if err != nil {
		return err
	}
	w := g.stdout
	fmt.Fprintf(w, "Demo vault with %d records: %s\n\n", n, path)
	d := &globals{vaultPath: path, identity: idPath, stdin: g.stdin, stdout: g.stdout, stderr: g.stderr, env: g.env, json: g.json}
	fmt.Fprintln(w, "$ phr list medication condition allergy")
	if err := d.listRecords(vault.Query{Kinds: []string{record.KindMedication, record.KindCondition, record.KindAllergy}}); err != nil {
		return err
	}
	fmt.Fprintln(w, "\n$ phr timeline --since \"3d ago\"")
	dv, err := d.openVault(true)
	if err != nil {
		return err
	}
	recs, err := dv.List(vault.Query{Since: time.Now().AddDate(0, 0, -3), Oldest: true})
	dv.Close()
	if err != nil {
		return err
	}
	printTimeline(w, recs)
	fmt.Fprintf(w, "\nExplore it:  export PHR_VAULT=%s PHR_IDENTITY=%s\n", path, idPath)
	fmt.Fprintln(w, "             phr list vital; phr search headache; phr show ID --fhir")
	return nil
}

// fillDemo logs two weeks of a fictional patient's data.
func fillDemo(v *vault.Vault, now time.Time) (int, error) {
	pat, err := record.NewPatient(record.Common{}, "Sam Demo", time.Date(1984, 5, 17, 0, 0, 0, 0, time.UTC))
	if err != nil {
		return 0, err
	}
	c := record.Common{Subject: "Patient/" + pat.ID, Now: now}
	day := func(d, h int) time.Time {
		t := now.AddDate(0, 0, -d)
		return time.Date(t.Year(), t.Month(), t.Day(), h, 0, 0, 0, t.Location())
	}
	recs := []record.Record{pat}
	add := func(r record.Record, err error) {
		if err == nil {
			recs = append(recs, r)
		}
	}
	add(record.NewCondition(c, "Type 2 diabetes mellitus", day(400, 9), ""))
	add(record.NewCondition(c, "Essential hypertension", day(200, 9), ""))
	add(record.NewAllergy(c, record.Allergy{Substance: "Penicillin", Reaction: "Hives", Severity: "moderate"}))
	add(record.NewMedication(c, record.Medication{Name: "Metformin", Dose: "500 mg", Frequency: "twice daily", Start: day(390, 8), Reason: "Type 2 diabetes"}))
	add(record.NewMedication(c, record.Medication{Name: "Lisinopril", Dose: "10 mg", Frequency: "once daily", Start: day(190, 8), Reason: "Hypertension"}))
	add(record.NewImmunization(c, "Influenza vaccine", day(40, 11), ""))
	for d := 13; d >= 0; d-- {
		add(record.NewDose(c, record.Dose{Name: "Metformin", Amount: "500 mg", At: day(d, 8)}))
		add(record.NewDose(c, record.Dose{Name: "Lisinopril", Amount: "10 mg", At: day(d, 8)}))
		bp, _ := record.ParseVital("bp", fmt.Sprintf("%d/%d", 128+(d*7)%15, 80+(d*5)%9))
		add(record.NewVital(c, bp, day(d, 7)))
		gl, _ := record.ParseVital("glucose", fmt.Sprintf("%dmg/dL", 105+(d*13)%40))
		add(record.NewVital(c, gl, day(d, 7)))
		if d%3 == 0 {
			wt, _ := record.ParseVital("weight", fmt.Sprintf("%.1fkg", 84.0-float64(13-d)*0.2))
			add(record.NewVital(c, wt, day(d, 7)))
		}
		if d%4 == 1 {
			add(record.NewSymptom(c, record.Symptom{Name: "Headache", Severity: 3 + d%5, At: day(d, 15)}))
		}
	}
	add(record.NewNote(c, "Walking 30 minutes after dinner most days; fasting glucose trending down.", day(1, 21)))
	if _, err := v.Add(recs); err != nil {
		return 0, err
	}
	return len(recs), v.SetSetting(settingPatient, []byte(pat.ID))
}
