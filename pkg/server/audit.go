package server

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/phr-project/phr/pkg/server/api"
	"github.com/phr-project/phr/pkg/sharestore"
	"github.com/phr-project/phr/pkg/vault"
)

// Audit events phrd writes (vault.AuditEntry.Event).
const (
	AuditShareAccess   = "share.access"   // (GET /audit/shares only) Success, Ref (share ID), Label (recipient), Method (outcome), Counts["accesses"] (not-logged)
	AuditLogin         = "login"          // Success, Method (passphrase|device), Client
	AuditLogout        = "logout"         // Method
	AuditDeviceAdd     = "device.add"     // Ref (slot ID), Label
	AuditDeviceRemove  = "device.remove"  // Ref, Label, Counts["sessions_ended"]
	AuditAccountCreate = "account.create" // Client ("host" for phrd account create)
	AuditAccountImport = "account.import" // Client "host", Counts["records"] (phrd account import)
	AuditImport        = "import"         // Success, Format, Counts (added, duplicates, skipped, failed), DryRun as Label "dry-run"
	// AuditImportRollback: opening the vault at a login undid an import a
	// crash had interrupted, or (vaults in the database) the janitor of a
	// node holding the vault open undid an import whose node died, once
	// its lease ran out. Ref (the file's SHA-256), Counts["records"].
	AuditImportRollback = "import.rollback"
)

// audit appends entries to the vault's audit log. A failure is logged,
// not returned: the action it records has happened.
func (s *Server) audit(acct string, v *vault.Vault, entries ...vault.AuditEntry) {
	now := s.cfg.Now().UTC()
	for i := range entries {
		if entries[i].Time.IsZero() {
			entries[i].Time = now
		}
	}
	if err := v.AppendAudit(entries...); err != nil {
		s.log.Error("audit write failed", acctAttr(acct), "kind", errKind(err))
	}
}

// auditPage reads the limit and cursor of an audit listing.
func auditPage(c echo.Context) (limit int, cursor string, err error) {
	limit = 100
	if q := c.QueryParam("limit"); q != "" {
		n, err := strconv.Atoi(q)
		if err != nil || n < 1 || n > 1000 {
			return 0, "", badRequest("limit: must be a whole number from 1 to 1000")
		}
		limit = n
	}
	return limit, c.QueryParam("cursor"), nil
}

var errCursor = badRequest("cursor: not one this listing gave")

// listAudit is GET /api/v1/audit: the account's own events (account
// creation, logins, logouts, devices, key changes, imports), newest first,
// a page at a time. Accesses to its shares are listed apart
// (listShareAudit), so that no link holder can push these out of view.
func (s *Server) listAudit(c echo.Context) error {
	limit, cursor, err := auditPage(c)
	if err != nil {
		return err
	}
	v := vaultOf(c)
	var before uint64 // entries with a smaller seq; 0: from the newest
	if cursor != "" {
		if before, err = strconv.ParseUint(cursor, 10, 64); err != nil || before == 0 {
			return errCursor
		}
	}
	// The log's sequence numbers are consecutive, so the entries before
	// a seq are the newest ones but head-before+1.
	skip := 0
	if before > 0 {
		newest, err := v.Audit(1)
		if err != nil {
			return err
		}
		if len(newest) > 0 && newest[0].Seq >= before {
			skip = int(min(newest[0].Seq-before+1, uint64(vault.MaxAuditEntries)+1))
		}
	}
	entries, err := v.Audit(skip + limit + 1)
	if err != nil {
		return err
	}
	entries = entries[min(skip, len(entries)):]
	page := api.Audit{Entries: auditEntries(entries)}
	if len(entries) > limit {
		page.Entries = page.Entries[:limit]
		page.NextCursor = strconv.FormatUint(page.Entries[limit-1].Seq, 10)
	}
	return c.JSON(http.StatusOK, page)
}

// listShareAudit is GET /api/v1/audit/shares: the accesses to the
// account's shares, from the share store's logs, newest first, a page at
// a time. Each is an entry of event share.access: Ref is the share ID,
// Label the name the recipient gave, Method the outcome (ok,
// wrong-passcode, expired, revoked, used-up, locked), Success whether it
// opened; an entry with Method not-logged stands for Counts["accesses"]
// accesses of one minute beyond the share's log rate.
func (s *Server) listShareAudit(c echo.Context) error {
	limit, cursor, err := auditPage(c)
	if err != nil {
		return err
	}
	var after *shareAuditPos
	if cursor != "" {
		p, ok := parseShareAuditCursor(cursor)
		if !ok {
			return errCursor
		}
		after = &p
	}
	all, err := s.shareAudit(sessionOf(c).acct.id)
	if err != nil {
		return err
	}
	slices.SortFunc(all, func(a, b shareAuditEntry) int { return a.pos.compare(b.pos) })
	i := 0
	if after != nil {
		i, _ = slices.BinarySearchFunc(all, *after, func(e shareAuditEntry, p shareAuditPos) int {
			if e.pos.compare(p) <= 0 {
				return -1
			}
			return 1
		})
	}
	page := api.Audit{Entries: []api.AuditEntry{}}
	for ; i < len(all) && len(page.Entries) < limit; i++ {
		page.Entries = append(page.Entries, auditEntries([]vault.AuditEntry{all[i].e})...)
	}
	if i < len(all) {
		page.NextCursor = all[i-1].pos.String()
	}
	return c.JSON(http.StatusOK, page)
}

// shareAuditPos orders share accesses for listing: newest first, and
// among equal times by share (a hash of its ID, so the cursor names no
// share) and by the entry's number in that share's log, newest first.
type shareAuditPos struct {
	t     int64 // Unix nanoseconds
	share uint64
	seq   uint64
}

func (p shareAuditPos) compare(q shareAuditPos) int {
	if c := cmp.Compare(q.t, p.t); c != 0 {
		return c
	}
	if c := cmp.Compare(p.share, q.share); c != 0 {
		return c
	}
	return cmp.Compare(q.seq, p.seq)
}

func (p shareAuditPos) String() string { return fmt.Sprintf("%x.%x.%x", p.t, p.share, p.seq) }

func parseShareAuditCursor(s string) (shareAuditPos, bool) {
	f := strings.Split(s, ".")
	if len(f) != 3 {
		return shareAuditPos{}, false
	}
	var v [3]uint64
	for i := range f {
		n, err := strconv.ParseUint(f[i], 16, 64)
		if err != nil {
			return shareAuditPos{}, false
		}
		v[i] = n
	}
	return shareAuditPos{t: int64(v[0]), share: v[1], seq: v[2]}, true
}

type shareAuditEntry struct {
	pos shareAuditPos
	e   vault.AuditEntry
}

// shareAudit lists the accesses to the account's shares as audit entries.
func (s *Server) shareAudit(acct string) ([]shareAuditEntry, error) {
	list, err := s.shl.ListShares(acct)
	if err != nil {
		return nil, err
	}
	var out []shareAuditEntry
	for _, sh := range list {
		log, err := s.shl.ShareLog(acct, sh.ID)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256([]byte(sh.ID))
		h := binary.BigEndian.Uint64(sum[:8])
		for _, e := range log {
			ae := vault.AuditEntry{Time: e.Time, Event: AuditShareAccess, Success: e.Outcome == sharestore.OutcomeOK, Ref: sh.ID, Label: e.Recipient, Method: e.Outcome}
			if e.Count > 0 {
				ae.Counts = map[string]int{"accesses": e.Count}
			}
			out = append(out, shareAuditEntry{pos: shareAuditPos{t: e.Time.UnixNano(), share: h, seq: e.Seq}, e: ae})
		}
	}
	return out, nil
}
