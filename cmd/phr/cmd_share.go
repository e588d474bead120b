package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

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
	cmd.AddCommand(newShareCreateCommand(g), newShareListCommand(g), newShareRevokeCommand(g), newShareLogCommand(g), newShareUpdateCommand(g))
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
	case share.ProfileKTC:
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

// shareContent builds what a share holds: the IPS (--summary), the
// Kill-the-Clipboard bundle (--profile ktc) or a plain bundle.
func shareContent(patient record.Record, recs []record.Record, summary bool, profile, story string, now time.Time) ([]byte, error) {
	switch {
	case summary:
		return share.BuildIPS(patient, recs, now)
	case profile == share.ProfileKTC:
		return share.BuildKTC(patient, recs, share.KTCOptions{Now: now, Story: story})
	}
	return share.BuildBundle(patient, recs)
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
		return 0, usagef("--expires is required (e.g. 30m, 2h, 7d)")
	}
	mult := time.Duration(0)
	switch {
	case strings.HasSuffix(s, "d"):
		mult = 24 * time.Hour
	case strings.HasSuffix(s, "w"):
		mult = 7 * 24 * time.Hour
	}
	var d time.Duration
	if mult != 0 {
		var n int
		if _, err := fmt.Sscanf(s[:len(s)-1], "%d", &n); err != nil || n <= 0 || fmt.Sprint(n) != s[:len(s)-1] {
			return 0, usagef("--expires: use e.g. 30m, 2h, 7d")
		}
		d = time.Duration(n) * mult
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil || d <= 0 {
			return 0, usagef("--expires: use e.g. 30m, 2h, 7d")
		}
	}
	if d < time.Minute || d > 366*24*time.Hour {
		return 0, usagef("--expires: between 1 minute and a year")
	}
	return d, nil
}

// selectForShare reads the records to share and the patient from the
// local vault.
func (g *globals) selectForShare(o shareOptions, kinds []string) (record.Record, []record.Record, error) {
	lo := listOptions{since: o.since}
	q, err := lo.query(kinds)
	if err != nil {
		return record.Record{}, nil, err
	}
	v, err := g.openVault(true)
	if err != nil {
		return record.Record{}, nil, err
	}
	defer v.Close()
	patient, _ := v.Patient()
	var recs []record.Record
	switch {
	case o.ids != "":
		if len(kinds) > 0 || o.summary {
			return patient, nil, usagef("--ids selects the records itself: no types or --summary with it")
		}
		for _, id := range strings.Split(o.ids, ",") {
			r, err := resolve(v, strings.TrimSpace(id))
			if err != nil {
				return patient, nil, err
			}
			if r.Deleted {
				return patient, nil, fmt.Errorf("record %s was deleted", r.ID)
			}
			recs = append(recs, r)
		}
	default:
		if recs, err = v.List(q); err != nil {
			return patient, nil, err
		}
	}
	// The patient goes in once, as the subject, not as a record.
	out := recs[:0]
	for _, r := range recs {
		if r.ID != patient.ID && !(o.summary && r.Kind == record.KindPatient) {
			out = append(out, r)
		}
	}
	if len(out) == 0 && !o.summary && !o.hasStory {
		return patient, nil, errors.New("no records match: nothing to share")
	}
	return patient, out, nil
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
	patient, recs, err := g.selectForShare(o, kinds)
	if err != nil {
		return err
	}
	content, err := shareContent(patient, recs, o.summary, o.profile, story, time.Now())
	if err != nil {
		return err
	}
	if o.profile == share.ProfileKTC {
		if err := share.CheckKTCBundle(content); err != nil {
			return err // a bug of phr's: the bundle it built breaks the profile
		}
	}
	key := share.NewKey()
	defer clear(key)
	jwe, err := share.EncryptFile(key, share.ContentTypeFHIR, content, true)
	if err != nil {
		return err
	}
	c, _, err := g.remoteClient(ctx)
	if err != nil {
		return err
	}
	defer c.Logout(ctx)
	resp, err := c.CreateShare(ctx, api.CreateShareRequest{
		Files:     []api.ShareFile{{ContentType: share.ContentTypeFHIR, JWE: jwe}},
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
	if o.longTerm {
		// Keep what 'phr share update' needs: the link's key and the
		// selection, sealed in the vault like everything else.
		kept := longTermShare{Key: share.EncodeKey(key), Kinds: kinds, IDs: o.ids, Since: o.since, Summary: o.summary}
		data, _ := json.Marshal(kept)
		v, err := g.openVault(false)
		if err != nil {
			return err
		}
		err = v.SetSetting(shareSetting(resp.ID), data)
		v.Close()
		if err != nil {
			return err
		}
	}
	p := resp.Payload(key)
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
	if g.json {
		return printJSON(g.stdout, map[string]any{"id": resp.ID, "link": link, "shlink": shlink, "flag": resp.Flag, "expires_at": resp.ExpiresAt, "records": len(recs)})
	}
	w := g.stdout
	fmt.Fprintf(w, "Shared %d records until %s", len(recs), resp.ExpiresAt.Local().Format("2006-01-02 15:04"))
	switch {
	case o.profile == share.ProfileKTC:
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
}

func newShareListCommand(g *globals) *cobra.Command {
	return &cobra.Command{
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
			if g.json {
				if shares == nil {
					shares = []api.ShareInfo{}
				}
				return printJSON(g.stdout, shares)
			}
			if len(shares) == 0 {
				fmt.Fprintln(g.stdout, "No shares.")
				return nil
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTATUS\tEXPIRES\tOPENED\tLABEL")
			for _, s := range shares {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", s.ID, s.Status, s.ExpiresAt.Local().Format("2006-01-02 15:04"), s.Uses, s.Label)
			}
			return tw.Flush()
		},
	}
}

func newShareRevokeCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke [--] ID",
		Short: "End a share now (the next request is refused)",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, done, err := g.remoteSession(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			if _, err := c.RevokeShare(cmd.Context(), a[0]); err != nil {
				return remoteError(err)
			}
			fmt.Fprintf(g.stdout, "Revoked share %s\n", a[0])
			return nil
		},
	}
}

func newShareLogCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "log [--] ID",
		Short: "Who opened a share, when, and with what outcome",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, done, err := g.remoteSession(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			log, err := c.ShareLog(cmd.Context(), a[0])
			if err != nil {
				return remoteError(err)
			}
			if g.json {
				if log == nil {
					log = []api.ShareLogEntry{}
				}
				return printJSON(g.stdout, log)
			}
			if len(log) == 0 {
				fmt.Fprintln(g.stdout, "Nobody has opened it yet.")
				return nil
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "WHEN\tRECIPIENT\tOUTCOME")
			for _, e := range log {
				if e.Count > 0 { // accesses beyond the log's rate, counted
					fmt.Fprintf(tw, "%s\t(%d more in this minute, not logged one by one)\t\n", e.Time.Local().Format("2006-01-02 15:04"), e.Count)
					continue
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\n", e.Time.Local().Format("2006-01-02 15:04:05"), e.Recipient, e.Outcome)
			}
			return tw.Flush()
		},
	}
}

// shareSettingPrefix names the vault settings that keep long-term shares'
// keys and selections.
const shareSettingPrefix = "share/"

// shareSetting names the setting of the share with manifest ID id. Setting
// names are not sealed, and the ID is what fetches the share's ciphertext
// and spends its attempts, so the name holds a hash of it, never the ID.
func shareSetting(id string) string {
	sum := sha256.Sum256([]byte("phr share setting\x00" + id))
	return shareSettingPrefix + hex.EncodeToString(sum[:16])
}

// longTermSetting reads the setting of share id. Vaults written before
// the names were hashed keep the ID itself in the name: such a setting is
// moved to its hashed name when found.
func longTermSetting(v *vault.Vault, id string) ([]byte, error) {
	data, err := v.Setting(shareSetting(id))
	if !errors.Is(err, vault.ErrNotFound) {
		return data, err
	}
	legacy := shareSettingPrefix + id
	data, err = v.Setting(legacy)
	if err != nil {
		return nil, err
	}
	if err := v.SetSetting(shareSetting(id), data); err != nil {
		return nil, err
	}
	return data, v.DeleteSetting(legacy)
}

// longTermShare is what the vault keeps of a long-term share.
type longTermShare struct {
	Key     string   `json:"key"`
	Kinds   []string `json:"kinds,omitempty"`
	IDs     string   `json:"ids,omitempty"`
	Since   string   `json:"since,omitempty"`
	Summary bool     `json:"summary,omitempty"`
}

func newShareUpdateCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "update [--] ID",
		Short: "Refresh a long-term share with the vault's current records (same link)",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			ctx := cmd.Context()
			v, err := g.openVault(false)
			if err != nil {
				return err
			}
			data, err := longTermSetting(v, a[0])
			v.Close()
			if err != nil {
				return fmt.Errorf("share %s is not a long-term share made from this vault (phr share create --long-term)", a[0])
			}
			var kept longTermShare
			if err := json.Unmarshal(data, &kept); err != nil {
				return err
			}
			key, err := share.DecodeKey(kept.Key)
			if err != nil {
				return err
			}
			defer clear(key)
			o := shareOptions{ids: kept.IDs, since: kept.Since, summary: kept.Summary}
			patient, recs, err := g.selectForShare(o, kept.Kinds)
			if err != nil {
				return err
			}
			content, err := shareContent(patient, recs, o.summary, "", "", time.Now())
			if err != nil {
				return err
			}
			jwe, err := share.EncryptFile(key, share.ContentTypeFHIR, content, true)
			if err != nil {
				return err
			}
			c, _, err := g.remoteClient(ctx)
			if err != nil {
				return err
			}
			defer c.Logout(ctx)
			if _, err := c.UpdateShare(ctx, a[0], []api.ShareFile{{ContentType: share.ContentTypeFHIR, JWE: jwe}}); err != nil {
				return remoteError(err)
			}
			if g.json {
				return printJSON(g.stdout, map[string]any{"id": a[0], "records": len(recs)})
			}
			fmt.Fprintf(g.stdout, "Share %s now holds %d records (same link).\n", a[0], len(recs))
			return nil
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
