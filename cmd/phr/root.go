package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/phr-project/phr/pkg/record"
	"github.com/phr-project/phr/pkg/vault"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Exit codes, documented in the README and `phr --help`. Scripts branch
// on them: 3 means try again later, 4 a different key, 5 look at what
// happened to the file.
const (
	exitOK       = 0
	exitFailure  = 1 // anything else that failed
	exitUsage    = 2 // bad flags, arguments or values; nothing was written
	exitLocked   = 3 // the vault is in use by another phr or phrd (vault.ErrLocked)
	exitWrongKey = 4 // no key slot opens with the passphrase, identity or recovery code (vault.ErrWrongKey)
	exitTampered = 5 // the file is not what its head or this device says it was (vault.ErrTampered, vault.ErrRolledBack)
)

// exitCode maps an error to its exit code, by type and sentinel.
func exitCode(err error) int {
	var ue *usageError
	var ie *record.InputError
	switch {
	case errors.As(err, &ue), errors.As(err, &ie):
		return exitUsage
	case errors.Is(err, vault.ErrLocked):
		return exitLocked
	case errors.Is(err, vault.ErrWrongKey):
		return exitWrongKey
	case errors.Is(err, vault.ErrTampered), errors.Is(err, vault.ErrRolledBack):
		return exitTampered
	}
	return exitFailure
}

// usageError marks errors in what the user typed: exit code 2. hint, if
// set, says how to type it instead.
type usageError struct {
	err  error
	hint string
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return &usageError{err: fmt.Errorf(format, args...)}
}

// globals are the flags and streams every command shares.
type globals struct {
	vaultPath string
	identity  string
	json      bool
	stdin     io.Reader
	stdout    io.Writer // escapes terminal controls (termSafe)
	stderr    io.Writer // likewise
	// rawStdout is stdout as given, for exports whose bytes are a file.
	rawStdout io.Writer
	env       func(string) string
	// rolledBack holds what opening the vault rolled back (openWith),
	// which the command reports itself if reportsRollbacks, else openWith
	// prints it on stderr.
	rolledBack       []vault.Rollback
	reportsRollbacks bool
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, env func(string) string) int {
	rawStdout := stdout
	stdout, stderr = &termSafe{w: stdout}, &termSafe{w: stderr}
	g := &globals{stdin: stdin, stdout: stdout, stderr: stderr, rawStdout: rawStdout, env: env}
	root := newRootCommand(g)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	_, err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(stderr, "phr: "+message(err))
	if h := hint(err); h != "" {
		fmt.Fprintln(stderr, "hint: "+h)
	}
	return exitCode(err)
}

// message turns known errors into one line for people.
func message(err error) string {
	switch {
	case errors.Is(err, vault.ErrLocked):
		return "the vault is in use by another process (waited 2s)"
	case errors.Is(err, vault.ErrNewerVersion):
		return "this vault was written by a newer version of phr; upgrade phr to open it (the file was not changed)"
	case errors.Is(err, vault.ErrNotVault):
		return "not a phr vault (the file was not changed)"
	case errors.Is(err, vault.ErrCorrupt):
		return "the vault file is damaged or was tampered with (the file was not changed): " + err.Error()
	}
	return err.Error()
}

func hint(err error) string {
	switch {
	case errors.Is(err, vault.ErrLocked):
		return "another phr or phrd has the vault open; try again when it is done"
	case errors.Is(err, errNoVault):
		return "run 'phr init' to create one, or point --vault (or PHR_VAULT) at yours"
	}
	var ue *usageError
	if errors.As(err, &ue) {
		return ue.hint
	}
	return ""
}

func newRootCommand(g *globals) *rootCommand {
	cmd := &cobra.Command{
		Use:   "phr",
		Short: "Your personal health record, encrypted, on your own machine",
		Long: `phr keeps your health records in one encrypted file (the vault).
Log medications, doses, symptoms and vitals; import what providers give you;
browse, search and share them. Nothing in the vault is readable without your key.

Exit codes: 0 success; 1 failure; 2 usage (bad flags or values, nothing
written); 3 the vault is in use by another phr or phrd (try again); 4 wrong
passphrase, identity or recovery code; 5 the vault file was changed behind
phr's back or is older than one this device has seen (see phr check).`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	cmd.SetFlagErrorFunc(flagError)
	pf := cmd.PersistentFlags()
	pf.StringVar(&g.vaultPath, "vault", "", "vault file (env PHR_VAULT; default "+displayPath(defaultVaultPath(g.env))+")")
	pf.StringVar(&g.identity, "identity", "", "age identity file that opens the vault (env PHR_IDENTITY)")
	pf.BoolVar(&g.json, "json", false, "print JSON instead of text")
	cmd.AddCommand(
		newInitCommand(g),
		newLogCommand(g),
		newListCommand(g),
		newTimelineCommand(g),
		newSearchCommand(g),
		newShowCommand(g),
		newEditCommand(g),
		newRmCommand(g),
		newVersionCommand(g),
		newDemoCommand(g),
		newKeyCommand(g),
		newPasswdCommand(g),
		newBackupCommand(g),
		newRestoreCommand(g),
		newCheckCommand(g),
		newExportCommand(g),
		newRemoteCommand(g),
		newShareCommand(g),
	)
	for _, c := range moreCommands {
		cmd.AddCommand(c(g))
	}
	requireSubcommands(cmd)
	return &rootCommand{cmd}
}

// requireSubcommands makes every command that only groups others (log,
// key, share, remote) refuse what is not one of them: a usage error with
// a suggestion, instead of printing its help and succeeding having done
// nothing. Alone, such a command prints its help.
func requireSubcommands(c *cobra.Command) {
	for _, sub := range c.Commands() {
		requireSubcommands(sub)
	}
	if !c.HasSubCommands() || c.Runnable() {
		return
	}
	c.Args = cobra.ArbitraryArgs
	if c.SuggestionsMinimumDistance <= 0 {
		c.SuggestionsMinimumDistance = 2
	}
	c.RunE = func(cmd *cobra.Command, a []string) error {
		if len(a) == 0 {
			return cmd.Help()
		}
		msg := fmt.Sprintf("unknown command %q for %q", a[0], cmd.CommandPath())
		if s := suggestFor(cmd, a); s != "" {
			msg += "; did you mean " + s + "?"
		} else {
			var names []string
			for _, sub := range cmd.Commands() {
				if sub.IsAvailableCommand() {
					names = append(names, sub.Name())
				}
			}
			msg += " (use one of: " + strings.Join(names, ", ") + ")"
		}
		return usagef("%s", msg)
	}
}

// suggestFor proposes the command a mistyped one was meant to be.
func suggestFor(cmd *cobra.Command, a []string) string {
	if cmd.Name() == "log" && isVitalName(a[0]) {
		return fmt.Sprintf("%q", cmd.CommandPath()+" vital "+strings.Join(a, " "))
	}
	if s := cmd.SuggestionsFor(a[0]); len(s) > 0 {
		return fmt.Sprintf("%q", cmd.CommandPath()+" "+strings.Join(append([]string{s[0]}, a[1:]...), " "))
	}
	return ""
}

// flagError makes flag errors usage errors, and says what a word that
// starts with a dash but is no flag means: a negative number ("-5kg") is
// no reading, and an ID that starts with "-" goes after "--".
func flagError(_ *cobra.Command, err error) error {
	var ne *pflag.NotExistError
	if errors.As(err, &ne) {
		if s := ne.GetSpecifiedShortnames(); s != "" {
			if s[0] >= '0' && s[0] <= '9' || s[0] == '.' {
				return usagef("-%s: a value below zero is not a valid reading or amount", s)
			}
			return &usageError{err: err, hint: "an ID that starts with - goes after --, as in: phr share revoke -- -AbC..."}
		}
	}
	return &usageError{err: err}
}

// moreCommands are commands registered by files of their own (init).
var moreCommands []func(*globals) *cobra.Command

type rootCommand struct{ *cobra.Command }

func (r *rootCommand) ExecuteContext(ctx context.Context) (*cobra.Command, error) {
	r.Command.SetContext(ctx)
	return r.Command.ExecuteC()
}

// args wraps a cobra argument validator so its errors are usage errors.
func args(v cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if err := v(cmd, a); err != nil {
			return &usageError{err: err}
		}
		return nil
	}
}

var version = "dev"

func newVersionCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print phr's version and vault format",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.print(map[string]any{"version": version, "vaultFormat": vault.FormatVersion}, func(w io.Writer) error {
				fmt.Fprintf(w, "phr %s (vault format %d)\n", version, vault.FormatVersion)
				return nil
			})
		},
	}
}

// withVault opens the vault (for reading only or for writing), runs fn
// with it, and closes it.
func (g *globals) withVault(readOnly bool, fn func(v *vault.Vault) error) error {
	v, err := g.openVault(readOnly)
	if err != nil {
		return err
	}
	defer v.Close()
	return fn(v)
}

// onVault is a command's RunE that runs fn with the vault (withVault).
func (g *globals) onVault(readOnly bool, fn func(cmd *cobra.Command, a []string, v *vault.Vault) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, a []string) error {
		return g.withVault(readOnly, func(v *vault.Vault) error { return fn(cmd, a, v) })
	}
}
