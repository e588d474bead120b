package server

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/phr-project/phr/internal/vaulttest"
	"github.com/phr-project/phr/pkg/importers/importertest"
	"github.com/phr-project/phr/pkg/record"
	"github.com/phr-project/phr/pkg/server/api"
	"github.com/phr-project/phr/pkg/vault"
)

// A patient's CLI vault moves to a hosted account: `phr backup`, then
// `phrd account import`. The account has every record of the backup, with
// its ID and version, and the patient; the account can log in with the
// new passphrase; and a backup that cannot be read leaves no account.
func TestImportAccount(t *testing.T) {
	ts := newTestServer(t, nil)

	owner, recs, backup, backupID := cliBackup(t)
	other, _ := age.GenerateX25519Identity()

	// Backups that do not restore make no account, and leave nothing in
	// the data directory.
	for _, tt := range []struct {
		name string
		data []byte
		ids  []age.Identity
	}{
		{"cut short", backup.Bytes()[:backup.Len()/2], []age.Identity{backupID}},
		{"another identity", backup.Bytes(), []age.Identity{other}},
		{"not a backup", []byte("age-encryption.org/v1\nnot really\n"), []age.Identity{backupID}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ImportAccount(ts.cfg.DataDir, "liz", testPass, bytes.NewReader(tt.data), tt.ids); err == nil {
				t.Fatal("imported")
			}
			want(t, ts.client().do("POST", "/api/v1/sessions", api.SessionRequest{Username: "liz", Passphrase: testPass}), http.StatusUnauthorized)
			for _, sub := range []string{"vaults", "tmp"} {
				ents, _ := os.ReadDir(filepath.Join(ts.cfg.DataDir, sub))
				if len(ents) != 0 {
					t.Errorf("%s holds %d entries", sub, len(ents))
				}
			}
		})
	}

	res, err := ImportAccount(ts.cfg.DataDir, "Liz", testPass, bytes.NewReader(backup.Bytes()), []age.Identity{backupID})
	if err != nil {
		t.Fatal(err)
	}
	if res.Username != "liz" || res.PatientID != owner.ID || res.Records < len(recs) || !vault.IsRecoveryCode(res.RecoveryCode) {
		t.Fatalf("imported %+v (patient %s, %d records)", res, owner.ID, len(recs))
	}
	// A second import of the username is refused, and the first account
	// stays as it is.
	if _, err := ImportAccount(ts.cfg.DataDir, "liz", testPass, bytes.NewReader(backup.Bytes()), []age.Identity{backupID}); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("second import: %v", err)
	}

	c := ts.client()
	c.login("liz", testPass)
	var got []string
	cursor := ""
	for {
		r := c.do("GET", "/api/v1/records?limit=500"+cursor, nil)
		want(t, r, http.StatusOK)
		var page api.RecordList
		r.decode(t, &page)
		for _, it := range page.Records {
			got = append(got, it.ID+"@"+strconv.FormatUint(it.Version, 10))
		}
		if page.NextCursor == "" {
			break
		}
		cursor = "&cursor=" + page.NextCursor
	}
	var wantIDs []string
	for _, r := range recs {
		wantIDs = append(wantIDs, r.ID+"@"+strconv.FormatUint(r.Version, 10))
	}
	sort.Strings(got)
	sort.Strings(wantIDs)
	if strings.Join(got, ",") != strings.Join(wantIDs, ",") {
		t.Fatalf("the account lists %d records, the backup had %d", len(got), len(wantIDs))
	}
	// The audit log says where the account came from, and the recovery
	// code printed opens the account.
	var audit api.Audit
	r := c.do("GET", "/api/v1/audit", nil)
	want(t, r, http.StatusOK)
	r.decode(t, &audit)
	found := false
	for _, e := range audit.Entries {
		found = found || e.Event == AuditAccountImport && e.Success && e.Counts["records"] == res.Records
	}
	want(t, ts.client().do("POST", "/api/v1/accounts/recover", RecoverRequest{Username: "liz", RecoveryCode: res.RecoveryCode, NewPassphrase: "another long passphrase"}), http.StatusOK)
	if !found {
		t.Errorf("no %s entry in %+v", AuditAccountImport, audit.Entries)
	}
}

// cliBackup is a patient's CLI vault with a real Synthea file in it, and
// its backup to backupID: the vault's owner and records, and the backup.
func cliBackup(t *testing.T) (owner record.Record, recs []record.Record, backup *bytes.Buffer, backupID *age.X25519Identity) {
	t.Helper()
	v := vaulttest.New(t)
	vaulttest.SetOwner(t, v, "Liz Conn", time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC))
	vaulttest.Import(t, v, importertest.Shared(t, "fhir", "synthea-r4", "Liz_Conn_27c911c6-f045-4ffa-af5d-6eba57ac94b2.json"))
	owner, recs = vaulttest.Contents(t, v)
	backupID, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	backup = &bytes.Buffer{}
	if _, err := v.Backup(backup, []age.Recipient{backupID.Recipient()}, false); err != nil {
		t.Fatal(err)
	}
	return owner, recs, backup, backupID
}
