package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"

	"filippo.io/age"
	"github.com/phr-project/phr/pkg/vault"
	"github.com/spf13/cobra"
)

func newKeyCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "key",
		Short: "Manage the ways into the vault: passphrases, devices, the recovery code, the vault key",
		Args:  args(cobra.NoArgs),
	}
	cmd.AddCommand(newKeyListCommand(g), newKeyAddDeviceCommand(g), newKeyAddPassphraseCommand(g),
		newKeyRemoveCommand(g), newKeyRecoveryCommand(g), newKeyRecoverCommand(g), newKeyRotateCommand(g))
	return cmd
}

func newKeyListCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List key slots (kind, label, created, which is this device's); never secrets",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			v, err := g.openVault(true)
			if err != nil {
				return err
			}
			slots, err := v.Slots()
			var mine []string
			if err == nil {
				mine, err = g.thisDevice(v)
			}
			v.Close()
			if err != nil {
				return err
			}
			type listed struct {
				vault.Slot
				ThisDevice bool `json:"thisDevice"`
			}
			out := make([]listed, len(slots))
			for i, s := range slots {
				out[i] = listed{s, slices.Contains(mine, s.ID)}
			}
			return printRows(g, out, "", "SLOT\tKIND\tLABEL\tCREATED\t", func(s listed) string {
				note := ""
				if s.ThisDevice {
					note = "this device"
				}
				return fmt.Sprintf("%s\t%s\t%s\t%s\t%s", s.ID, s.Kind, s.Label, s.Created.Local().Format("2006-01-02 15:04"), note)
			}, "")
		},
	}
}

// newPassphrase reads a new passphrase from PHR_NEW_PASSPHRASE or, twice,
// from the terminal.
func (g *globals) newPassphrase() (string, error) {
	p := g.env("PHR_NEW_PASSPHRASE")
	if p == "" {
		var err error
		if p, err = g.prompt("New passphrase: "); err != nil {
			return "", usagef("no new passphrase: set PHR_NEW_PASSPHRASE or run in a terminal")
		}
		again, err := g.prompt("Repeat new passphrase: ")
		if err != nil {
			return "", err
		}
		if again != p {
			return "", usagef("the passphrases do not match")
		}
	}
	if len([]rune(p)) < 8 {
		return "", usagef("the passphrase must have at least 8 characters")
	}
	return p, nil
}

func newKeyAddDeviceCommand(g *globals) *cobra.Command {
	var label, recipient, out string
	cmd := &cobra.Command{
		Use:   "add-device",
		Short: "Let another device (or a hardware key) open the vault",
		Long: `add-device adds a device slot. Give --recipient with the other device's age
public key (age1..., or an age plugin recipient such as a hardware key), or
--out FILE to make a new identity file to copy to that device.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (recipient == "") == (out == "") {
				return usagef("give exactly one of --recipient age1... or --out FILE")
			}
			var rs []age.Recipient
			var id *age.X25519Identity
			if recipient != "" {
				var err error
				if rs, err = age.ParseRecipients(strings.NewReader(recipient)); err != nil || len(rs) != 1 {
					return usagef("--recipient: not an age recipient")
				}
			} else {
				if _, err := os.Lstat(out); err == nil {
					return usagef("--out: %s exists; not overwriting it", out)
				}
				var err error
				if id, err = age.GenerateX25519Identity(); err != nil {
					return err
				}
				rs = []age.Recipient{id.Recipient()}
			}
			if label == "" {
				label = "device added " + time.Now().Format("2006-01-02")
			}
			v, err := g.openVault(false)
			if err != nil {
				return err
			}
			defer v.Close()
			if id != nil {
				body := fmt.Sprintf("# phr device identity, created %s\n# public key: %s\n%s\n", time.Now().UTC().Format(time.RFC3339), id.Recipient(), id)
				if err := writePrivate(out, []byte(body)); err != nil {
					return err
				}
			}
			s, err := v.AddSlot(vault.SlotSpec{Kind: vault.SlotDevice, Label: label, Recipients: rs})
			if err != nil {
				if out != "" {
					os.Remove(out)
				}
				return err
			}
			return g.print(s, func(w io.Writer) error {
				fmt.Fprintf(w, "Added device slot %s (%s)\n", s.ID, label)
				if out != "" {
					fmt.Fprintf(w, "Its identity is in %s: copy it to the device (PHR_IDENTITY or its config dir) and delete it here.\n", out)
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&label, "label", "", "a name for the device")
	cmd.Flags().StringVar(&recipient, "recipient", "", "the device's age recipient (age1...)")
	cmd.Flags().StringVar(&out, "out", "", "write a new identity for the device to this file (0600)")
	return cmd
}

func newKeyAddPassphraseCommand(g *globals) *cobra.Command {
	var label string
	cmd := &cobra.Command{
		Use:   "add-passphrase",
		Short: "Add another passphrase (PHR_NEW_PASSPHRASE or prompt)",
		Args:  args(cobra.NoArgs),
		RunE: g.onNewPassphrase(func(v *vault.Vault, p string) error {
			if label == "" {
				label = "passphrase"
			}
			s, err := v.AddSlot(vault.SlotSpec{Kind: vault.SlotPassphrase, Label: label, Passphrase: p})
			if err != nil {
				return err
			}
			return g.print(s, func(w io.Writer) error {
				fmt.Fprintf(w, "Added passphrase slot %s\n", s.ID)
				return nil
			})
		}),
	}
	cmd.Flags().StringVar(&label, "label", "", "a name for the passphrase")
	return cmd
}

func newKeyRemoveCommand(g *globals) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "remove SLOT",
		Short: "Remove a key slot (never the last one; this device's only with --force)",
		Long: `remove deletes a key slot and rewrites the vault file without it, so that
its secret opens nothing in the file any more (copies made before still
open with it: see docs/keys.md). It refuses the last slot, and the slot of
this device (the one its identity opens) unless --force is given.`,
		Args: args(cobra.ExactArgs(1)),
		RunE: g.onVault(false, func(cmd *cobra.Command, a []string, v *vault.Vault) error {
			if !force {
				mine, err := g.thisDevice(v)
				if err != nil {
					return err
				}
				if slices.Contains(mine, a[0]) {
					return usagef("key slot %s is this device's: without it this device needs the passphrase or the recovery code; give --force to remove it anyway", a[0])
				}
			}
			switch err := v.RemoveSlot(a[0]); {
			case errors.Is(err, vault.ErrLastSlot):
				return errors.New("that is the last key slot: removing it would lock you out; add another first")
			case errors.Is(err, vault.ErrNotFound):
				return fmt.Errorf("no key slot %s (see phr key list)", a[0])
			case err != nil:
				return err
			}
			fmt.Fprintf(g.stdout, "Removed key slot %s\n", a[0])
			return nil
		}),
	}
	cmd.Flags().BoolVar(&force, "force", false, "remove the slot even if it is this device's")
	return cmd
}

// onNewPassphrase is onVault for a command that sets a passphrase: it
// reads the new passphrase (PHR_NEW_PASSPHRASE or a prompt) first, then
// opens the vault for writing with the current secret.
func (g *globals) onNewPassphrase(fn func(v *vault.Vault, passphrase string) error) func(*cobra.Command, []string) error {
	return func(*cobra.Command, []string) error {
		p, err := g.newPassphrase()
		if err != nil {
			return err
		}
		return g.withVault(false, func(v *vault.Vault) error { return fn(v, p) })
	}
}

func newPasswdCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "passwd",
		Short: "Change the passphrase (the new one from PHR_NEW_PASSPHRASE or a prompt)",
		Args:  args(cobra.NoArgs),
		RunE: g.onNewPassphrase(func(v *vault.Vault, p string) error {
			if _, err := v.ReplaceSlots(vault.SlotSpec{Kind: vault.SlotPassphrase, Label: "passphrase", Passphrase: p}); err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, "Passphrase changed; the old one no longer opens the vault.")
			fmt.Fprintln(g.stdout, "The vault key is the same: a copy of the file made before still opens with the old passphrase (phr key rotate changes the key).")
			return nil
		}),
	}
}

func printRecovery(g *globals, code, what string) error {
	return g.print(map[string]string{"recoveryCode": code}, func(w io.Writer) error {
		writeRecovery(w, code, what)
		return nil
	})
}

// writeRecovery is the text that shows a new recovery code, after what.
func writeRecovery(w io.Writer, code, what string) {
	if what != "" {
		fmt.Fprintf(w, "%s\n\n", what)
	}
	fmt.Fprintf(w, "New recovery code (shown only now; write it down):\n\n    %s\n\nThe old recovery code no longer works.\n", code)
}

func newKeyRecoveryCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "recovery",
		Short: "Make a new recovery code; the old one stops working",
		Args:  args(cobra.NoArgs),
		RunE: g.onVault(false, func(cmd *cobra.Command, _ []string, v *vault.Vault) error {
			code := vault.NewRecoveryCode()
			if _, err := v.ReplaceSlots(vault.SlotSpec{Kind: vault.SlotRecovery, Label: "recovery code", RecoveryCode: code}); err != nil {
				return err
			}
			return printRecovery(g, code, "Recovery code replaced.")
		}),
	}
}

func newKeyRotateCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "rotate",
		Short: "Make a new vault key: reseal every record, rewrap every slot, new recovery code",
		Long: `rotate replaces the vault key itself, for when you think the key (not just a
passphrase) may have leaked. Every record is resealed and every slot
rewrapped in one transaction: if it is interrupted, the vault is as it was.
The passphrase (PHR_PASSPHRASE or a prompt) is needed to rewrap the
passphrase slots; a new recovery code is printed.`,
		Args: args(cobra.NoArgs),
		RunE: g.onVault(false, func(cmd *cobra.Command, _ []string, v *vault.Vault) error {
			slots, err := v.Slots()
			if err != nil {
				return err
			}
			var opts vault.RotateOptions
			newPass := false
			for _, s := range slots {
				switch s.Kind {
				case vault.SlotPassphrase:
					if opts.Passphrase != "" {
						break
					}
					switch {
					case g.env("PHR_PASSPHRASE") != "":
						opts.Passphrase = g.env("PHR_PASSPHRASE")
					case g.env("PHR_RECOVERY_CODE") != "":
						// Opened with the recovery code: the passphrase
						// slots get a new passphrase.
						if opts.Passphrase, err = g.newPassphrase(); err != nil {
							return err
						}
						newPass = true
					default:
						if opts.Passphrase, err = g.prompt("Passphrase: "); err != nil {
							return usagef("rotate needs the passphrase: set PHR_PASSPHRASE (or PHR_RECOVERY_CODE and PHR_NEW_PASSPHRASE) or run in a terminal")
						}
					}
				case vault.SlotRecovery:
					opts.RecoveryCode = vault.NewRecoveryCode()
				}
			}
			if opts.Passphrase != "" && !newPass { // it must be the right one
				if ok, err := v.Opens(vault.Passphrase(opts.Passphrase)); err != nil {
					return err
				} else if !ok {
					return errors.New("wrong passphrase")
				}
			}
			live, deleted, _ := v.Count()
			if err := v.Rotate(opts); err != nil {
				return err
			}
			what := fmt.Sprintf("New vault key: %d records resealed, %d slots rewrapped.", live+deleted, len(slots))
			if opts.RecoveryCode == "" {
				fmt.Fprintln(g.stdout, what)
				return nil
			}
			return printRecovery(g, opts.RecoveryCode, what)
		}),
	}
}

func newKeyRecoverCommand(g *globals) *cobra.Command {
	var noDevice, keepDevices bool
	cmd := &cobra.Command{
		Use:   "recover",
		Short: "Lost the passphrase and this device's key? Open with the recovery code and set new ones",
		Long: `recover opens the vault with the recovery code (PHR_RECOVERY_CODE or a
prompt) and, in one change: replaces every passphrase with a new one
(PHR_NEW_PASSPHRASE or a prompt), removes every device slot (unless
--keep-devices) and adds one for this device (its identity in the config
directory, made if there is none; not with --no-device), and replaces the
recovery code with a new one, printed once: the old code stops working.
The vault file is then rewritten without the old slots. The vault key does
not change: run phr key rotate too if a removed device or an old secret may
be in someone else's hands.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			code := g.env("PHR_RECOVERY_CODE")
			if code == "" {
				var err error
				if code, err = g.prompt("Recovery code: "); err != nil {
					return usagef("no recovery code: set PHR_RECOVERY_CODE or run in a terminal")
				}
			}
			if !vault.IsRecoveryCode(code) {
				return usagef("that is not a recovery code: it has 26 letters and digits, as phr init printed it")
			}
			pass, err := g.newPassphrase()
			if err != nil {
				return err
			}
			path := g.path()
			if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("%w: no vault at %s", errNoVault, path)
			}
			v, err := g.openWith(path, vault.RecoveryCode(code), false, openOptions{})
			if errors.Is(err, vault.ErrWrongKey) {
				return wrongKey("wrong recovery code")
			}
			if err != nil {
				return explainOpenError(err)
			}
			defer v.Close()
			before, err := v.Slots()
			if err != nil {
				return err
			}
			newCode := vault.NewRecoveryCode()
			specs := []vault.SlotSpec{
				{Kind: vault.SlotPassphrase, Label: "passphrase", Passphrase: pass},
				{Kind: vault.SlotRecovery, Label: "recovery code", RecoveryCode: newCode},
			}
			idPath := deviceIdentityPath(g.env)
			created := false
			if !noDevice {
				recipient, made, err := deviceRecipient(idPath)
				if err != nil {
					return err
				}
				created = made
				host, _ := os.Hostname()
				specs = append(specs, vault.SlotSpec{Kind: vault.SlotDevice, Label: "device " + host + " (recovered " + time.Now().Format("2006-01-02") + ")", Recipients: []age.Recipient{recipient}})
			}
			kinds := []vault.SlotKind{vault.SlotPassphrase, vault.SlotRecovery, vault.SlotDevice}
			if keepDevices {
				kinds = kinds[:2]
			}
			removedDevices := 0
			for _, s := range before {
				if s.Kind == vault.SlotDevice && !keepDevices {
					removedDevices++
				}
			}
			if _, err := v.ReplaceSlotsOf(kinds, nil, specs...); err != nil {
				return err
			}
			out := map[string]any{"recoveryCode": newCode, "devicesRemoved": removedDevices}
			if !noDevice {
				out["identity"], out["identityCreated"] = idPath, created
			}
			return g.print(out, func(w io.Writer) error {
				fmt.Fprintln(w, "Recovered: the new passphrase opens the vault; the old passphrase and recovery code do not.")
				if removedDevices > 0 {
					fmt.Fprintf(w, "Removed %d device key(s): add your other devices again with phr key add-device.\n", removedDevices)
				}
				switch {
				case noDevice:
				case created:
					fmt.Fprintf(w, "Created this device's key %s; it opens the vault.\n", displayPath(idPath))
				default:
					fmt.Fprintf(w, "This device's key %s opens the vault.\n", displayPath(idPath))
				}
				fmt.Fprintln(w, "The vault key is unchanged: if a lost device or an old secret may be in someone else's hands, run phr key rotate as well.")
				fmt.Fprintln(w)
				writeRecovery(w, newCode, "")
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&noDevice, "no-device", false, "add no device key for this machine")
	cmd.Flags().BoolVar(&keepDevices, "keep-devices", false, "keep the other devices' keys (only the passphrase is lost)")
	return cmd
}
