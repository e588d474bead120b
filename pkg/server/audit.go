package server

import (
	"net/http"
	"strconv"
	"sync"

	"github.com/labstack/echo/v4"
	"github.com/phr-project/phr/pkg/server/api"
	"github.com/phr-project/phr/pkg/vault"
)

// Audit events phrd writes (vault.AuditEntry.Event).
const (
	AuditLogin         = "login"          // Success, Method (passphrase|device), Client
	AuditLogout        = "logout"         // Method
	AuditDeviceAdd     = "device.add"     // Ref (slot ID), Label
	AuditDeviceRemove  = "device.remove"  // Ref, Label, Counts["sessions_ended"]
	AuditAccountCreate = "account.create" // Client ("host" for phrd account create)
	AuditImport        = "import"         // Success, Format, Counts (added, duplicates, skipped, failed), DryRun as Label "dry-run"
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
	if entries == nil {
		entries = []vault.AuditEntry{}
	}
	return c.JSON(http.StatusOK, api.Audit{Entries: entries})
}
