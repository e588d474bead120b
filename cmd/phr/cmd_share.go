package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/phr-project/phr/pkg/fhirdoc"
	"github.com/phr-project/phr/pkg/pdfdoc"
	"github.com/phr-project/phr/pkg/record"
	"github.com/phr-project/phr/pkg/server/api"
	"github.com/phr-project/phr/pkg/share"
	"github.com/phr-project/phr/pkg/vault"
	"github.com/spf13/cobra"
)

type shareOptions struct {
	longTerm     bool
	ids          string
	since        string
	summary      bool
	expires      string
	passcode     string
	passcodeFile string
	askPasscode  bool
	label        string
	maxUses      int
	qr           bool
	qrPNG        string
	direct       bool
	profile      string
	storyFile    string
	hasStory     bool // a ktc share with a story may select no records
}

func newShareCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "share",
		Short: "Share selected records with a provider: a SMART Health Link and QR code",
		Args:  args(cobra.NoArgs),
	}
	cmd.AddCommand(newShareCreateCommand(g), newShareListCommand(g), newShareShowCommand(g), newShareRevokeCommand(g), newShareLogCommand(g), newShareUpdateCommand(g))
	return cmd
}

func newShareCreateCommand(g *globals) *cobra.Command {
	var o shareOptions
	cmd := &cobra.Command{
		Use:   "create [TYPE...] --expires DURATION [--direct] [--profile ktc [--story-file FILE]]",
		Short: "Share records through the phrd of `phr remote login`",
		Long: `create selects records (types, --ids, --since, or --summary for an
International Patient Summary), encrypts them here with a fresh key, and
uploads only the ciphertext to the phrd. The key travels in the link's
fragment: the server never sees it. Prints the link (and a QR code with --qr).

A passcode (told to the provider separately) comes from --ask-passcode (a
prompt without echo), --passcode-file FILE (its first line; - reads
standard input), or PHR_SHARE_PASSCODE. --passcode VALUE works too, but a
command line is visible to other users of this machine (ps) and stays in
the shell's history: prefer the others.

--direct makes a U-flag link: its url answers a GET with the one encrypted
file, without a manifest, and never has a passcode. --profile ktc shares
for CMS's "Kill the Clipboard" check-in: a direct link whose file is a
patient-shared bundle of the selected records with a PDF rendering of them
(and, with --story-file, a PDF of a note in your own words).`,
		Example: `  phr share create medication allergy condition --expires 30m --ask-passcode --qr
  PHR_SHARE_PASSCODE=4711 phr share create --summary --expires 7d --label "For Dr. Rivera"
  phr share create --ids 3kq7,p5hb --expires 2h --max-uses 1
  phr share create allergy medication condition immunization --profile ktc --story-file my-story.txt --expires 15m --qr`,
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := o.checkProfile(cmd.Flags().Changed("passcode")); err != nil {
				return err
			}
			pc, err := g.sharePasscode(o, cmd.Flags().Changed("passcode"))
			if err != nil {
				return err
			}
			if o.direct && pc != "" {
				return usagef("a direct (U) link has no passcode: unset PHR_SHARE_PASSCODE")
			}
			o.passcode = pc
			return runShareCreate(cmd.Context(), g, o, a)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.ids, "ids", "", "share these records (IDs or unique prefixes, comma-separated)")
	f.StringVar(&o.since, "since", "", "only records dated on or after")
	f.BoolVar(&o.summary, "summary", false, "share an International Patient Summary built from the vault")
	f.StringVar(&o.expires, "expires", "", "how long the link works: 30m, 2h, 7d (required)")
	f.StringVar(&o.passcode, "passcode", "", "a passcode the provider must type (visible to other local users: prefer --ask-passcode, --passcode-file or PHR_SHARE_PASSCODE)")
	f.StringVar(&o.passcodeFile, "passcode-file", "", "read the passcode from the first line of this file (- for standard input)")
	f.BoolVar(&o.askPasscode, "ask-passcode", false, "ask for the passcode at a prompt, without echo")
	f.StringVar(&o.label, "label", "", "a short description the provider sees (at most 80 characters)")
	f.IntVar(&o.maxUses, "max-uses", 0, "the link stops working after this many opens")
	f.BoolVar(&o.qr, "qr", false, "print the QR code in the terminal")
	f.StringVar(&o.qrPNG, "qr-png", "", "write the QR code as a PNG file")
	f.BoolVar(&o.longTerm, "long-term", false, "a long-term link (L flag) whose content 'phr share update' can refresh; its key is kept, sealed, in the vault")
	f.BoolVar(&o.direct, "direct", false, "a direct link (U flag): a GET of its url returns the one encrypted file; no passcode")
	f.StringVar(&o.profile, "profile", "", "ktc: a Kill-the-Clipboard patient-shared bundle with a PDF rendering (implies --direct)")
	f.StringVar(&o.storyFile, "story-file", "", "with --profile ktc: a text file in your own words, shared as a PDF (- reads standard input)")
	return cmd
}

// checkProfile checks the flags that go with --direct and --profile, and
// sets --direct for a ktc share.
func (o *shareOptions) checkProfile(passcodeFlag bool) error {
	switch o.profile {
	case "":
		if o.storyFile != "" {
			return usagef("--story-file goes with --profile ktc")
		}
	case fhirdoc.ProfileKTC:
		if o.summary {
			return usagef("--profile ktc shares the selected records as a patient-shared bundle: no --summary with it")
		}
		if o.longTerm {
			return usagef("--profile ktc links are short-lived direct links: no --long-term with it")
		}
		o.direct = true
	default:
		return usagef("--profile: the only profile is ktc")
	}
	if o.direct && (passcodeFlag || o.passcodeFile != "" || o.askPasscode) {
		return usagef("a direct (U) link has no passcode: give --direct or a passcode, not both")
	}
	return nil
}

// maxStoryFile bounds what --story-file reads.
const maxStoryFile = pdfdoc.MaxStory

// readStory reads --story-file.
func (g *globals) readStory(name string) (string, error) {
	if name == "" {
		return "", nil
	}
	var r io.Reader = g.stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return "", err
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, maxStoryFile+1))
	if err != nil {
		return "", fmt.Errorf("--story-file: %w", err)
	}
	if len(data) > maxStoryFile {
		return "", usagef("--story-file: at most %d KiB", maxStoryFile>>10)
	}
	if !utf8.Valid(data) {
		return "", usagef("--story-file: not UTF-8 text")
	}
	if strings.TrimSpace(string(data)) == "" {
		return "", usagef("--story-file: the file is empty")
	}
	return string(data), nil
}

// shareFile is the one file of a share: the records o and kinds select,
// as the IPS (--summary), the Kill-the-Clipboard bundle (--profile ktc)
// or a plain bundle, encrypted under key. It returns how many records it
// holds.
func (g *globals) shareFile(key []byte, o shareOptions, kinds []string, story string) (api.ShareFile, int, error) {
	patient, recs, err := g.selectForShare(o, kinds)
	if err != nil {
		return api.ShareFile{}, 0, err
	}
	content, err := fhirdoc.BuildShare(patient, recs, fhirdoc.ShareDoc{Summary: o.summary, Profile: o.profile, Story: story, Now: time.Now()})
	if err != nil {
		return api.ShareFile{}, 0, err
	}
	jwe, err := share.EncryptFile(key, share.ContentTypeFHIR, content, true)
	return api.ShareFile{ContentType: share.ContentTypeFHIR, JWE: jwe}, len(recs), err
}

// maxPasscodeFile bounds what --passcode-file reads.
const maxPasscodeFile = 4096

// sharePasscode is the passcode of a new share: from --passcode,
// --passcode-file or --ask-passcode (at most one of them), else from
// PHR_SHARE_PASSCODE, else none.
func (g *globals) sharePasscode(o shareOptions, flagGiven bool) (string, error) {
	n := 0
	for _, given := range []bool{flagGiven, o.passcodeFile != "", o.askPasscode} {
		if given {
			n++
		}
	}
	if n > 1 {
		return "", usagef("give one of --passcode, --passcode-file and --ask-passcode")
	}
	var pc string
	switch {
	case flagGiven:
		if o.passcode == "" {
			return "", usagef("--passcode: must not be empty")
		}
		return o.passcode, nil
	case o.passcodeFile != "":
		var r io.Reader = g.stdin
		if o.passcodeFile != "-" {
			f, err := os.Open(o.passcodeFile)
			if err != nil {
				return "", err
			}
			defer f.Close()
			r = f
		}
		data, err := io.ReadAll(io.LimitReader(r, maxPasscodeFile))
		if err != nil {
			return "", fmt.Errorf("--passcode-file: %w", err)
		}
		pc, _, _ = strings.Cut(string(data), "\n")
		pc = strings.TrimSuffix(pc, "\r")
		if pc == "" {
			return "", usagef("--passcode-file: the first line is empty")
		}
	case o.askPasscode:
		var err error
		if pc, err = g.prompt("Passcode for the link: "); err != nil {
			return "", usagef("--ask-passcode needs a terminal; use --passcode-file or PHR_SHARE_PASSCODE")
		}
		again, err := g.prompt("Repeat the passcode: ")
		if err != nil {
			return "", err
		}
		if again != pc {
			return "", usagef("the passcodes do not match")
		}
		if pc == "" {
			return "", usagef("the passcode must not be empty")
		}
	default:
		pc = g.env("PHR_SHARE_PASSCODE")
	}
	if len(pc) > share.MaxPasscodeLength {
		return "", usagef("the passcode must be at most %d bytes", share.MaxPasscodeLength)
	}
	return pc, nil
}

// parseExpiry parses 30m, 2h, 7d, 1w (and Go durations).
func parseExpiry(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, usagef("--expires is required (e.g. 30m, 2h, 7d, 2w, 1y)")
	}
	mult := time.Duration(0)
	switch {
	case strings.HasSuffix(s, "d"):
		mult = 24 * time.Hour
	case strings.HasSuffix(s, "w"):
		mult = 7 * 24 * time.Hour
	case strings.HasSuffix(s, "y"):
		mult = 365 * 24 * time.Hour
	}
	var d time.Duration
	if mult != 0 {
		var n int
		if _, err := fmt.Sscanf(s[:len(s)-1], "%d", &n); err != nil || n <= 0 || fmt.Sprint(n) != s[:len(s)-1] {
			return 0, usagef("--expires: a number and a unit: m (minutes), h (hours), d (days), w (weeks) or y (a year), e.g. 30m, 2h, 7d, 2w, 1y")
		}
		d = time.Duration(n) * mult
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil || d <= 0 {
			return 0, usagef("--expires: a number and a unit: m (minutes), h (hours), d (days), w (weeks) or y (a year), e.g. 30m, 2h, 7d, 2w, 1y")
		}
	}
	if d < time.Minute || d > 366*24*time.Hour {
		return 0, usagef("--expires: between 1 minute and a year (1y, 52w or 366d at most)")
	}
	return d, nil
}

// selectForShare reads the records to share and the patient from the
// local vault.
func (g *globals) selectForShare(o shareOptions, kinds []string) (record.Record, []record.Record, error) {
	sel := vault.Selection{Kinds: kinds, Summary: o.summary, NoneOK: o.hasStory}
	if o.ids != "" {
		for _, id := range strings.Split(o.ids, ",") {
			sel.IDs = append(sel.IDs, strings.TrimSpace(id))
		}
	}
	var err error
	if sel.Since, err = when("since", o.since); err != nil {
		return record.Record{}, nil, err
	}
	v, err := g.openVault(true)
	if err != nil {
		return record.Record{}, nil, err
	}
	defer v.Close()
	patient, recs, err := v.SelectForShare(sel)
	var se *vault.SelectionError
	if errors.As(err, &se) {
		return patient, nil, usagef("%s", se.Msg)
	}
	return patient, recs, err
}

func runShareCreate(ctx context.Context, g *globals, o shareOptions, kinds []string) error {
	ttl, err := parseExpiry(o.expires)
	if err != nil {
		return err
	}
	if o.maxUses < 0 {
		return usagef("--max-uses must not be negative")
	}
	if len([]rune(o.label)) > share.MaxLabelLength {
		return usagef("--label: at most %d characters", share.MaxLabelLength)
	}
	if _, err := g.loadRemote(); err != nil {
		return err
	}
	story, err := g.readStory(o.storyFile)
	if err != nil {
		return err
	}
	o.hasStory = story != ""
	key := share.NewKey()
	defer clear(key)
	file, nrecs, err := g.shareFile(key, o, kinds, story)
	if err != nil {
		return err
	}
	c, done, err := g.remoteSession(ctx)
	if err != nil {
		return err
	}
	defer done()
	resp, err := c.CreateShare(ctx, api.CreateShareRequest{
		Files:     []api.ShareFile{file},
		ExpiresAt: time.Now().Add(ttl),
		Passcode:  o.passcode,
		Label:     o.label,
		MaxUses:   o.maxUses,
		LongTerm:  o.longTerm,
		Direct:    o.direct,
	})
	if err != nil {
		return remoteError(err)
	}
	p := resp.Payload(key)
	// Keep what 'phr share show' and 'phr share update' need: the link's
	// payload (its key) and the selection, sealed in the vault like
	// everything else (the server never has the key).
	kept := share.Kept{Key: share.EncodeKey(key), Kinds: kinds, IDs: o.ids, Since: o.since, Summary: o.summary,
		Payload: &p, ViewerURL: resp.ViewerURL, LongTerm: o.longTerm, Profile: o.profile, Records: nrecs, Created: time.Now().UTC()}
	v, err := g.openVault(false)
	if err != nil {
		return err
	}
	err = share.SaveKept(v, resp.ID, kept)
	v.Close()
	if err != nil {
		return err
	}
	link, err := share.ViewerLink(resp.ViewerURL, p)
	if err != nil {
		return err
	}
	shlink, err := share.Encode(p)
	if err != nil {
		return err
	}
	if o.qrPNG != "" {
		png, err := share.QRPNG(link, 512)
		if err != nil {
			return err
		}
		if err := writePrivate(o.qrPNG, png); err != nil {
			return err
		}
	}
	return g.print(map[string]any{"id": resp.ID, "link": link, "shlink": shlink, "flag": resp.Flag, "expires_at": resp.ExpiresAt, "records": nrecs}, func(w io.Writer) error {
		fmt.Fprintf(w, "Shared %d records until %s", nrecs, resp.ExpiresAt.Local().Format("2006-01-02 15:04"))
		switch {
		case o.profile == fhirdoc.ProfileKTC:
			fmt.Fprint(w, ", as a Kill-the-Clipboard patient-shared bundle with its PDF")
		case o.direct:
			fmt.Fprint(w, ", as a direct link")
		}
		if o.passcode != "" {
			fmt.Fprint(w, ", with a passcode (tell it separately)")
		}
		if o.maxUses > 0 {
			fmt.Fprintf(w, ", at most %d opens", o.maxUses)
		}
		fmt.Fprintf(w, ".\n\n%s\n\nShare ID %s (phr share revoke %s ends it now).\n", link, resp.ID, resp.ID)
		if o.qr {
			qr, err := share.QRTerminal(link)
			if err != nil {
				return err
			}
			fmt.Fprintln(w)
			fmt.Fprint(w, qr)
		}
		return nil
	})
}

func newShareListCommand(g *globals) *cobra.Command {
	var ids bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List your shares and their status",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, done, err := g.remoteSession(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			shares, err := c.Shares(cmd.Context())
			if err != nil {
				return remoteError(err)
			}
			if ids {
				for _, s := range shares {
					fmt.Fprintln(g.stdout, s.ID)
				}
				return nil
			}
			return printRows(g, shares, "No shares.", "ID\tSTATUS\tEXPIRES\tOPENED\tKIND\tLABEL", func(s api.ShareInfo) string {
				return fmt.Sprintf("%s\t%s\t%s\t%d\t%s\t%s", s.ID, s.Status, s.ExpiresAt.Local().Format("2006-01-02 15:04"), s.Uses, shareKind(s), s.Label)
			}, "\nphr share show ID prints a link again (with --qr its QR code); an ID's first characters are enough.")
		},
	}
	cmd.Flags().BoolVar(&ids, "ids", false, "print only the shares' IDs, one per line")
	return cmd
}

// shareKind says how a share opens: with a passcode, directly (U), kept
// up to date (long-term).
func shareKind(s api.ShareInfo) string {
	var k []string
	if strings.Contains(s.Flag, share.FlagPasscode) {
		k = append(k, "passcode")
	}
	if strings.Contains(s.Flag, share.FlagDirect) {
		k = append(k, "direct")
	}
	if strings.Contains(s.Flag, share.FlagLongTerm) {
		k = append(k, "long-term")
	}
	if len(k) == 0 {
		return "-"
	}
	return strings.Join(k, ",")
}

func newShareShowCommand(g *globals) *cobra.Command {
	var qr bool
	cmd := &cobra.Command{
		Use:   "show [--] ID",
		Short: "Print a share's link again (and --qr its QR code), what it holds and its state",
		Long: `show prints again the link of a share made from this vault (phr keeps
each share's key sealed in the vault; phrd never has it), with what it holds,
how it opens and, when phrd can be reached, its state. An ID's first
characters are enough.`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error { return runShareShow(cmd.Context(), g, a[0], qr) },
	}
	cmd.Flags().BoolVar(&qr, "qr", false, "print the QR code too")
	return cmd
}

func runShareShow(ctx context.Context, g *globals, arg string, qr bool) error {
	id, err := g.shareID(ctx, arg)
	if err != nil {
		return err
	}
	v, err := g.openVault(false)
	if err != nil {
		return err
	}
	kept, err := share.LoadKept(v, id, isNotFound)
	v.Close()
	if errors.Is(err, share.ErrNotKept) || (err == nil && kept.Payload == nil) {
		return fmt.Errorf("this vault keeps no link of share %s: only shares made by this phr since December 2026 can be shown again (revoke it and make a new one if the link is lost)", id)
	}
	if err != nil {
		return err
	}
	link, err := share.ViewerLink(kept.ViewerURL, *kept.Payload)
	if err != nil {
		return err
	}
	var info *api.ShareInfo
	if c, done, err := g.remoteSession(ctx); err == nil {
		if shares, err := c.Shares(ctx); err == nil {
			for i := range shares {
				if shares[i].ID == id {
					info = &shares[i]
				}
			}
		}
		done()
	}
	out := map[string]any{"id": id, "link": link, "records": kept.Records, "longTerm": kept.LongTerm, "flag": kept.Payload.Flag, "label": kept.Payload.Label}
	if info != nil {
		out["status"], out["opened"], out["expires_at"] = info.Status, info.Uses, info.ExpiresAt
	}
	return g.print(out, func(w io.Writer) error {
		what := strings.Join(kept.Kinds, ", ")
		switch {
		case kept.Summary:
			what = "a patient summary (IPS)"
		case kept.IDs != "":
			what = "chosen records"
		case what == "":
			what = "all records"
		}
		if kept.Since != "" {
			what += " since " + kept.Since
		}
		fmt.Fprintf(w, "Share %s: %d records: %s", id, kept.Records, what)
		if kept.Profile != "" {
			fmt.Fprintf(w, " (profile %s)", kept.Profile)
		}
		fmt.Fprintln(w)
		if kept.Payload.Label != "" {
			fmt.Fprintf(w, "Label: %s\n", kept.Payload.Label)
		}
		fmt.Fprintf(w, "Opens: %s\n", shareKind(api.ShareInfo{Flag: kept.Payload.Flag}))
		switch {
		case info != nil:
			fmt.Fprintf(w, "State: %s, opened %d times, expires %s\n", info.Status, info.Uses, info.ExpiresAt.Local().Format("2006-01-02 15:04"))
		case kept.Payload.Exp > 0:
			fmt.Fprintf(w, "Expires: %s (phrd not reached: state unknown)\n", time.Unix(kept.Payload.Exp, 0).Local().Format("2006-01-02 15:04"))
		}
		if strings.Contains(kept.Payload.Flag, share.FlagPasscode) {
			fmt.Fprintln(w, "It asks for the passcode you chose (phr does not keep it).")
		}
		fmt.Fprintf(w, "\n%s\n", link)
		if qr {
			code, err := share.QRTerminal(link)
			if err != nil {
				return err
			}
			fmt.Fprintln(w)
			fmt.Fprint(w, code)
		}
		return nil
	})
}

// shareID resolves a share ID or its first characters against the shares
// phrd lists; offline, a whole ID is taken as it is.
func (g *globals) shareID(ctx context.Context, arg string) (string, error) {
	c, done, err := g.remoteSession(ctx)
	if err != nil {
		if len(arg) >= 43 {
			return arg, nil
		}
		return "", err
	}
	defer done()
	return resolveShareID(ctx, c, arg)
}

// resolveShareID expands a unique prefix (4 characters or more) of one of
// the account's share IDs.
func resolveShareID(ctx context.Context, c *api.Client, arg string) (string, error) {
	arg = strings.TrimSpace(arg)
	if len(arg) >= 43 {
		return arg, nil
	}
	if len(arg) < 4 {
		return "", usagef("share ID %q: give at least its first 4 characters (phr share list shows them)", arg)
	}
	shares, err := c.Shares(ctx)
	if err != nil {
		return "", remoteError(err)
	}
	var match string
	for _, s := range shares {
		if strings.HasPrefix(s.ID, arg) {
			if match != "" {
				return "", usagef("share ID %s matches several shares; give more characters", arg)
			}
			match = s.ID
		}
	}
	if match == "" {
		return "", fmt.Errorf("no share of yours has an ID starting %s (phr share list shows them)", arg)
	}
	return match, nil
}

// isNotFound reports a vault setting that is not there.
func isNotFound(err error) bool { return errors.Is(err, vault.ErrNotFound) }

// newShareIDCommand is a share command of one share ID that asks phrd:
// run gets a session's client and the share's whole ID.
func newShareIDCommand(g *globals, use, short string, run func(ctx context.Context, c *api.Client, id string) error) *cobra.Command {
	return &cobra.Command{
		Use:   use + " [--] ID",
		Short: short,
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, done, err := g.remoteSession(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			id, err := resolveShareID(cmd.Context(), c, a[0])
			if err != nil {
				return err
			}
			return run(cmd.Context(), c, id)
		},
	}
}

func newShareRevokeCommand(g *globals) *cobra.Command {
	return newShareIDCommand(g, "revoke", "End a share now (the next request is refused)", func(ctx context.Context, c *api.Client, id string) error {
		if _, err := c.RevokeShare(ctx, id); err != nil {
			return remoteError(err)
		}
		fmt.Fprintf(g.stdout, "Revoked share %s\n", id)
		return nil
	})
}

func newShareLogCommand(g *globals) *cobra.Command {
	return newShareIDCommand(g, "log", "Who opened a share, when, and with what outcome", func(ctx context.Context, c *api.Client, id string) error {
		log, err := c.ShareLog(ctx, id)
		if err != nil {
			return remoteError(err)
		}
		return printRows(g, log, "Nobody has opened it yet.", "WHEN\tRECIPIENT\tOUTCOME", func(e api.ShareLogEntry) string {
			if e.Count > 0 { // accesses beyond the log's rate, counted
				return fmt.Sprintf("%s\t(%d more in this minute, not logged one by one)\t", e.Time.Local().Format("2006-01-02 15:04"), e.Count)
			}
			return fmt.Sprintf("%s\t%s\t%s", e.Time.Local().Format("2006-01-02 15:04:05"), e.Recipient, e.Outcome)
		}, "")
	})
}

func newShareUpdateCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "update [--] ID",
		Short: "Refresh a long-term share with the vault's current records (same link)",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			ctx := cmd.Context()
			id, err := g.shareID(ctx, a[0])
			if err != nil {
				return err
			}
			v, err := g.openVault(false)
			if err != nil {
				return err
			}
			kept, err := share.LoadKept(v, id, isNotFound)
			if err == nil && !kept.LongTerm {
				err = share.ErrNotKept
			}
			if err != nil {
				v.Close()
				if errors.Is(err, share.ErrNotKept) {
					return fmt.Errorf("share %s is not a long-term share made from this vault (phr share create --long-term)", id)
				}
				return err
			}
			key, err := share.DecodeKey(kept.Key)
			if err != nil {
				return err
			}
			defer clear(key)
			v.Close()
			o := shareOptions{ids: kept.IDs, since: kept.Since, summary: kept.Summary}
			file, nrecs, err := g.shareFile(key, o, kept.Kinds, "")
			if err != nil {
				return err
			}
			c, done, err := g.remoteSession(ctx)
			if err != nil {
				return err
			}
			defer done()
			if _, err := c.UpdateShare(ctx, id, []api.ShareFile{file}); err != nil {
				return remoteError(err)
			}
			kept.Records = nrecs
			if v, err := g.openVault(false); err == nil {
				share.SaveKept(v, id, kept) // only the count changed: not worth failing over
				v.Close()
			}
			return g.print(map[string]any{"id": id, "records": nrecs}, func(w io.Writer) error {
				fmt.Fprintf(w, "Share %s now holds %d records (same link).\n", id, nrecs)
				return nil
			})
		},
	}
}

// remoteSession logs in to the phrd of `phr remote login` and returns the
// client and a function that logs out.
func (g *globals) remoteSession(ctx context.Context) (*api.Client, func(), error) {
	c, _, err := g.remoteClient(ctx)
	if err != nil {
		return nil, nil, err
	}
	return c, func() { c.Logout(ctx) }, nil
}
