package server

import (
	"net/http"
	"slices"
	"strconv"
	"sync"

	"github.com/labstack/echo/v4"
	"github.com/phr-project/phr/pkg/server/api"
	"github.com/phr-project/phr/pkg/vault"
)

// Audit events phrd writes (vault.AuditEntry.Event).
const (
	AuditShareAccess   = "share.access"   // Success, Ref (share ID), Label (recipient), Method (outcome)
	AuditLogin         = "login"          // Success, Method (passphrase|device), Client
	AuditLogout        = "logout"         // Method
	AuditDeviceAdd     = "device.add"     // Ref (slot ID), Label
	AuditDeviceRemove  = "device.remove"  // Ref, Label, Counts["sessions_ended"]
	AuditAccountCreate = "account.create" // Client ("host" for phrd account create)
	AuditImport        = "import"         // Success, Format, Counts (added, duplicates, skipped, failed), DryRun as Label "dry-run"
	// AuditImportRollback: opening the vault at a login undid an import a
	// crash had interrupted. Ref (the file's SHA-256), Counts["records"].
	AuditImportRollback = "import.rollback"
)

// pendingFailures keeps failed logins of existing accounts in memory
// (without the key they cannot be written to the vault) until the next
// successful login writes them into the audit log. Bounded per account and
// in accounts; a restart forgets them.
type pendingFailures struct {
	mu sync.Mutex
	m  map[string][]vault.AuditEntry
}

const (
	maxPendingPerAccount = 100
	maxPendingAccounts   = 100_000
)

func newPendingFailures() *pendingFailures {
	return &pendingFailures{m: map[string][]vault.AuditEntry{}}
}

func (p *pendingFailures) add(acct string, e vault.AuditEntry) {
	p.mu.Lock()
	defer p.mu.Unlock()
	l, ok := p.m[acct]
	if !ok && len(p.m) >= maxPendingAccounts {
		return
	}
	if len(l) >= maxPendingPerAccount {
		l = l[1:]
		// Keep count of what fell out in the oldest kept entry.
		if l[0].Counts == nil {
			l[0].Counts = map[string]int{}
		}
		l[0].Counts["earlier_failures"]++
	}
	p.m[acct] = append(l, e)
}

func (p *pendingFailures) take(acct string) []vault.AuditEntry {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.m[acct]
	delete(p.m, acct)
	return l
}

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

func (s *Server) listAudit(c echo.Context) error {
	limit := 100
	if q := c.QueryParam("limit"); q != "" {
		n, err := strconv.Atoi(q)
		if err != nil || n < 1 || n > 1000 {
			return badRequest("limit: must be a whole number from 1 to 1000")
		}
		limit = n
	}
	entries, err := vaultOf(c).Audit(limit)
	if err != nil {
		return err
	}
	// Share accesses happen without the owner's key, so the share store
	// logs them; they join the vault's own entries here, newest first.
	shares, err := s.shareAudit(sessionOf(c).acct.id)
	if err != nil {
		return err
	}
	entries = append(entries, shares...)
	slices.SortStableFunc(entries, func(a, b vault.AuditEntry) int { return b.Time.Compare(a.Time) })
	if len(entries) > limit {
		entries = entries[:limit]
	}
	if entries == nil {
		entries = []vault.AuditEntry{}
	}
	return c.JSON(http.StatusOK, api.Audit{Entries: entries})
}

// shareAudit lists the accesses to the account's shares as audit entries:
// event share.access (Success: opened) with the share ID as Ref, the name
// the recipient gave as Label, and the outcome (ok, wrong-passcode,
// expired, revoked, used-up, locked) as Method.
func (s *Server) shareAudit(acct string) ([]vault.AuditEntry, error) {
	list, err := s.shl.ListShares(acct)
	if err != nil {
		return nil, err
	}
	var out []vault.AuditEntry
	for _, sh := range list {
		log, err := s.shl.ShareLog(acct, sh.ID)
		if err != nil {
			return nil, err
		}
		for _, e := range log {
			out = append(out, vault.AuditEntry{Time: e.Time, Event: AuditShareAccess, Success: e.Outcome == "ok", Ref: sh.ID, Label: e.Recipient, Method: e.Outcome})
		}
	}
	return out, nil
}
