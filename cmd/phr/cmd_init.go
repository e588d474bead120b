package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"filippo.io/age"
	"github.com/phr-project/phr/pkg/record"
	"github.com/phr-project/phr/pkg/vault"
	"github.com/spf13/cobra"
)

type initOptions struct {
	name         string
	birthDate    string
	noPassphrase bool
	noDevice     bool
}

func newInitCommand(g *globals) *cobra.Command {
	var o initOptions
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create a vault, this device's key and a recovery code",
		Long: `init creates a new vault, wraps its key for your passphrase, for this
device (an age identity written to your config directory) and for a
recovery code that it prints once. It never touches an existing vault.

Your name and birth date let imports check that a file is about you (a
document about someone else is refused). On a terminal init asks for them
unless --name and --birth-date give them; scripts may leave them out, and
the first imported file that has them gives them.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return runInit(g, o) },
	}
	cmd.Flags().StringVar(&o.name, "name", "", "your name, for the Patient record and shares")
	cmd.Flags().StringVar(&o.birthDate, "birth-date", "", "your date of birth (YYYY-MM-DD)")
	cmd.Flags().BoolVar(&o.noPassphrase, "no-passphrase", false, "no passphrase slot: only this device and the recovery code open the vault")
	cmd.Flags().BoolVar(&o.noDevice, "no-device", false, "no device slot: every command asks for the passphrase (for machines without disk encryption)")
	return cmd
}

func runInit(g *globals, o initOptions) error {
	path := g.path()
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("a vault already exists at %s; init never touches an existing vault", path)
	}
	if isTerminal(g.stdin) {
		if o.name == "" {
			o.name = askLine(g, "Your name (for checking that imported files are about you): ")
		}
		for o.birthDate == "" {
			if o.birthDate = askLine(g, "Your date of birth (YYYY-MM-DD, or empty to skip): "); o.birthDate == "" {
				break
			}
			if _, err := time.Parse(time.DateOnly, o.birthDate); err != nil {
				fmt.Fprintln(g.stderr, "Please use YYYY-MM-DD, e.g. 1980-04-02.")
				o.birthDate = ""
			}
		}
	}
	var birth time.Time
	if o.birthDate != "" {
		t, err := time.Parse("2006-01-02", o.birthDate)
		if err != nil {
			return usagef("--birth-date: use YYYY-MM-DD")
		}
		if err := record.NotFuture("birth-date", record.Day(t.Year(), t.Month(), t.Day()), time.Now()); err != nil {
			return &usageError{err: err}
		}
		birth = t
	}
	var slots []vault.SlotSpec
	if !o.noPassphrase {
		pass := g.env("PHR_PASSPHRASE")
		if pass == "" {
			var err error
			if pass, err = g.prompt("New passphrase: "); err != nil {
				return usagef("no passphrase: set PHR_PASSPHRASE, run in a terminal, or pass --no-passphrase")
			}
			again, err := g.prompt("Repeat passphrase: ")
			if err != nil {
				return err
			}
			if again != pass {
				return usagef("the passphrases do not match")
			}
		}
		if len([]rune(pass)) < 8 {
			return usagef("the passphrase must have at least 8 characters")
		}
		slots = append(slots, vault.SlotSpec{Kind: vault.SlotPassphrase, Label: "passphrase", Passphrase: pass})
	}
	if o.noPassphrase && o.noDevice {
		return usagef("--no-passphrase and --no-device together leave only the recovery code")
	}
	idPath := deviceIdentityPath(g.env)
	created := false
	if !o.noDevice {
		recipient, made, err := deviceRecipient(idPath)
		if err != nil {
			return err
		}
		created = made
		host, _ := os.Hostname()
		slots = append(slots, vault.SlotSpec{Kind: vault.SlotDevice, Label: "device " + host, Recipients: []age.Recipient{recipient}})
	}
	code := vault.NewRecoveryCode()
	slots = append(slots, vault.SlotSpec{Kind: vault.SlotRecovery, Label: "recovery code", RecoveryCode: code})
	v, err := vault.Create(path, slots, nil)
	if err != nil {
		if errors.Is(err, vault.ErrExists) {
			return fmt.Errorf("a vault already exists at %s; init never touches an existing vault", path)
		}
		return err
	}
	defer v.Close()
	pat, err := record.NewPatient(record.Common{}, o.name, birth)
	if err != nil {
		return &usageError{err: err}
	}
	if _, err := v.Put(pat); err != nil {
		return err
	}
	if err := v.SetPatient(pat.ID); err != nil {
		return err
	}
	out := map[string]any{"vault": path, "recoveryCode": code, "patientId": pat.ID}
	if !o.noDevice {
		out["identity"], out["identityCreated"] = idPath, created
	}
	return g.print(out, func(w io.Writer) error {
		fmt.Fprintf(w, "Created vault %s\n", displayPath(path))
		switch {
		case o.noDevice:
			fmt.Fprintln(w, "No device key: every command will ask for the passphrase")
		case created:
			fmt.Fprintf(w, "Created this device's key %s (keep it private; it opens the vault without a passphrase)\n", displayPath(idPath))
		default:
			fmt.Fprintf(w, "This device's key %s opens it\n", displayPath(idPath))
		}
		fmt.Fprintf(w, "\nRecovery code (shown only now; write it down and keep it somewhere safe):\n\n    %s\n\n", code)
		fmt.Fprintln(w, "With it you can open the vault if you lose this device or forget your passphrase.")
		return nil
	})
}

// askLine reads one line typed on the terminal (echoed), trimmed; "" at
// the end of input.
func askLine(g *globals, label string) string {
	fmt.Fprint(g.stderr, label)
	line, err := bufio.NewReader(g.stdin).ReadString('\n')
	if err != nil && line == "" {
		fmt.Fprintln(g.stderr)
	}
	return strings.TrimSpace(line)
}

// deviceRecipient loads this device's identity, creating it if needed.
func deviceRecipient(path string) (age.Recipient, bool, error) {
	ids, err := readIdentities(path)
	if err == nil {
		for _, id := range ids {
			if x, ok := id.(*age.X25519Identity); ok {
				return x.Recipient(), false, nil
			}
			if h, ok := id.(*age.HybridIdentity); ok {
				return h.Recipient(), false, nil
			}
		}
		return nil, false, fmt.Errorf("device identity %s holds no X25519 or hybrid identity", path)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, false, err
	}
	body := fmt.Sprintf("# phr device identity, created %s\n# public key: %s\n%s\n", time.Now().UTC().Format(time.RFC3339), id.Recipient(), id)
	if err := writePrivate(path, []byte(body)); err != nil {
		return nil, false, err
	}
	return id.Recipient(), true, nil
}
