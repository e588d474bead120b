package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"filippo.io/age"
	"github.com/phr-project/phr/pkg/fhirdoc"
	"github.com/phr-project/phr/pkg/record"
	"github.com/phr-project/phr/pkg/server"
	"github.com/phr-project/phr/pkg/server/api"
	"github.com/phr-project/phr/pkg/share"
	"github.com/phr-project/phr/pkg/vault"
	"github.com/spf13/cobra"
)

type demoOptions struct {
	dir   string
	addr  string
	serve bool
	keep  bool
}

func newDemoCommand(g *globals) *cobra.Command {
	o := demoOptions{addr: "127.0.0.1:0", serve: true}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "See the whole product: a sample vault, a local phrd, and a share link to open in a browser",
		Long: `demo creates a vault in a new temporary directory (or --dir), fills it with
two weeks of a fictional patient's medications, doses, symptoms and vitals,
shows the list and the timeline, then starts a phrd on this machine, shares
the record with a passcode, and prints the link, the passcode and the QR
code. Open the link in a browser to see what a provider sees. It serves
until Ctrl-C, then removes the temporary directory unless --keep (a --dir
you gave is always kept). Your own vault is not touched.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return runDemo(cmd.Context(), g, o) },
	}
	cmd.Flags().StringVar(&o.dir, "dir", "", "directory for the demo vault (default: a new temporary directory)")
	cmd.Flags().StringVar(&o.addr, "addr", o.addr, "address of the demo phrd")
	cmd.Flags().BoolVar(&o.serve, "serve", o.serve, "start a phrd, share, and serve until Ctrl-C")
	cmd.Flags().BoolVar(&o.keep, "keep", false, "keep the temporary directory when the demo ends")
	return cmd
}

func runDemo(ctx context.Context, g *globals, o demoOptions) error {
	dir := o.dir
	temporary := dir == ""
	if temporary {
		var err error
		if dir, err = os.MkdirTemp("", "phr-demo-"); err != nil {
			return err
		}
		if !o.keep {
			defer func() {
				os.RemoveAll(dir)
				fmt.Fprintf(g.stderr, "Removed the demo's directory %s (--keep keeps it)\n", dir)
			}()
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
	err = printTimeline(w, func(fn func(vault.Entry) error) error {
		return dv.Entries(vault.Query{Since: time.Now().AddDate(0, 0, -3), Oldest: true}, fn)
	})
	dv.Close()
	if err != nil {
		return err
	}
	if o.serve || !temporary || o.keep {
		when := ""
		if o.serve && temporary && !o.keep {
			when = " (while the demo runs)"
		}
		fmt.Fprintf(w, "\nExplore it%s:  export PHR_VAULT=%s PHR_IDENTITY=%s\n", when, path, idPath)
		fmt.Fprintln(w, "             phr list vital; phr search headache; phr show ID --fhir")
	}
	if !o.serve {
		return nil
	}
	return serveDemo(ctx, d, dir, o.addr)
}

// serveDemo starts a phrd on addr, makes an account, shares the demo
// vault through it exactly as `phr share create --summary` would (the
// bundle is encrypted here; the server stores ciphertext), prints the
// link, passcode and QR code, and serves until ctx ends.
func serveDemo(ctx context.Context, d *globals, dir, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	base := "http://" + ln.Addr().String()
	srv, err := server.New(server.Config{
		DataDir:   filepath.Join(dir, "phrd"),
		PublicURL: base,
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		ln.Close()
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()

	pass := vault.NewRecoveryCode() // a throw-away account passphrase
	c := &api.Client{BaseURL: base}
	if _, err := c.CreateAccount(ctx, "demo", pass); err != nil {
		return err
	}
	if _, err := c.Login(ctx, api.SessionRequest{Username: "demo", Passphrase: pass}); err != nil {
		return err
	}
	patient, recs, err := d.selectForShare(shareOptions{summary: true}, nil)
	if err != nil {
		return err
	}
	bundle, err := fhirdoc.BuildBundle(patient, recs)
	if err != nil {
		return err
	}
	key := share.NewKey()
	jwe, err := share.EncryptFile(key, share.ContentTypeFHIR, bundle, true)
	if err != nil {
		return err
	}
	passcode := fmt.Sprintf("%06d", randomInt(1_000_000))
	resp, err := c.CreateShare(ctx, api.CreateShareRequest{
		Files:     []api.ShareFile{{ContentType: share.ContentTypeFHIR, JWE: jwe}},
		ExpiresAt: time.Now().Add(2 * time.Hour),
		Passcode:  passcode,
		Label:     "Demo: Sam Demo's record",
	})
	if err != nil {
		return err
	}
	link, err := share.ViewerLink(resp.ViewerURL, resp.Payload(key))
	if err != nil {
		return err
	}
	qr, err := share.QRTerminal(link)
	if err != nil {
		return err
	}
	w := d.stdout
	fmt.Fprintf(w, "\nA phrd is running at %s. The demo record is shared until %s.\n", base, resp.ExpiresAt.Local().Format("15:04"))
	fmt.Fprintf(w, "Open this link in a browser, as a provider would:\n\n%s\n\nPasscode: %s\n\n%s\n", link, passcode, qr)
	fmt.Fprintln(w, "Serving until Ctrl-C.")
	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		return err
	}
}

func randomInt(n int64) int64 {
	v, err := rand.Int(rand.Reader, big.NewInt(n))
	if err != nil {
		panic(err)
	}
	return v.Int64()
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
	return len(recs), v.SetPatient(pat.ID)
}
