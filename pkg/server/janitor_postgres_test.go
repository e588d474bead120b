package server

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/phr-project/phr/pkg/record"
	"github.com/phr-project/phr/pkg/server/api"
	"github.com/phr-project/phr/pkg/vault"
)

// TestPostgresJanitorRollsBackDead: a node that died in the middle of an
// import leaves its first batches and the import's marker in the
// database, and the other nodes keep the account's vault open for their
// sessions, so no open repairs it. The janitor's pass (sweep) of a node
// that holds the vault open rolls the dead import back once its lease has
// run out: its records are gone from the listings of every node, and the
// account's audit log says import.rollback. Imports whose lease is fresh,
// in the same vault and in another account's, are left alone and commit
// afterwards; a pass on another node finds nothing more to do.
func TestPostgresJanitorRollsBackDead(t *testing.T) {
	// The ticker stays out of the way: the test runs the passes.
	nodes := clusterNodes(t, 2, func(c *Config) { c.JanitorInterval = time.Hour })
	a, b := nodes[0], nodes[1]
	alice, bob := a.signup("alice"), a.signup("bob")
	aliceOnB := b.client()
	aliceOnB.login("alice", testPass)

	// Another node's Vault on the account's namespace, whose clock is
	// behind by behind (what it writes as its lease is relative to it).
	openVault := func(user string, behind time.Duration) *vault.Vault {
		t.Helper()
		v, err := a.data.store.open(a.data.accountID(user), vault.Passphrase(testPass),
			&vault.Options{NoSync: true, Now: func() time.Time { return time.Now().Add(-behind) }})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { v.Close() })
		return v
	}
	// begin begins the import of the file named tag through v and writes
	// its first n records.
	begin := func(v *vault.Vault, tag string, n int) (*vault.Import, string) {
		t.Helper()
		sha := tagSHA(tag)
		im, err := v.BeginImport(sha)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := im.Add(observations(t, tag, 0, n)); err != nil {
			t.Fatal(err)
		}
		return im, sha
	}

	// Imports on live nodes, leases fresh: one in the same vault, one in
	// another account's.
	liveAlice, _ := begin(openVault("alice", 0), "live-alice", 2)
	liveBob, _ := begin(openVault("bob", 0), "live-bob", 2)
	// The dead node: its clock an hour behind, so the lease of its
	// marker has run out (a lease is five minutes); then it stops,
	// leaving the import half-written. (Opened last: a Vault opened for
	// writing after it would roll the import back itself.)
	dead := openVault("alice", time.Hour)
	_, deadSHA := begin(dead, "dead", 3)
	dead.Close()

	type count struct {
		name string
		c    *client
		tag  string
		want int
	}
	check := func(when string, counts []count) {
		t.Helper()
		for _, tc := range counts {
			if got := listed(t, tc.c, tc.tag); got != tc.want {
				t.Errorf("%s: %s lists %d records of %q, want %d", when, tc.name, got, tc.tag, tc.want)
			}
		}
	}
	// Every vault is open on node A (and alice's on B too), and the
	// half-written records are in view.
	check("before the pass", []count{
		{"alice on A", alice, "dead", 3},
		{"alice on B", aliceOnB, "dead", 3},
		{"alice on A", alice, "live-alice", 2},
		{"bob on A", bob, "live-bob", 2},
	})

	a.sweep() // what the janitor's ticker calls

	check("after A's pass", []count{
		{"alice on A", alice, "dead", 0},
		{"alice on B", aliceOnB, "dead", 0},
		{"alice on A", alice, "live-alice", 2},
		{"alice on B", aliceOnB, "live-alice", 2},
		{"bob on A", bob, "live-bob", 2},
	})
	if got := rollbacks(t, alice); len(got) != 1 || got[0].Ref != deadSHA || got[0].Counts["records"] != 3 {
		t.Errorf("alice's audit log has %s entries %+v, want one for the dead import's 3 records", AuditImportRollback, got)
	}
	if got := rollbacks(t, bob); len(got) != 0 {
		t.Errorf("bob's audit log has %s entries %+v: a live import was rolled back", AuditImportRollback, got)
	}

	// Node B's pass finds nothing left to roll back.
	b.sweep()
	if got := rollbacks(t, aliceOnB); len(got) != 1 {
		t.Errorf("after B's pass: %d %s entries, want 1", len(got), AuditImportRollback)
	}
	// The live imports were not lost: they commit.
	for _, im := range []struct {
		im   *vault.Import
		c    *client
		tag  string
		want int
	}{{liveAlice, aliceOnB, "live-alice", 4}, {liveBob, bob, "live-bob", 4}} {
		if _, err := im.im.Commit(observations(t, im.tag, 2, 2)); err != nil {
			t.Fatalf("commit of %s: %v", im.tag, err)
		}
		check("after the commits", []count{{im.tag, im.c, im.tag, im.want}})
	}
}

// tagSHA is the SHA-256 (hex) of the file named tag in these tests.
func tagSHA(tag string) string {
	h := sha256.Sum256([]byte(tag))
	return hex.EncodeToString(h[:])
}

// observations makes n imported Observations of the file named tag,
// named tag-<i> for i from from on.
func observations(t *testing.T, tag string, from, n int) []record.Record {
	t.Helper()
	sha := tagSHA(tag)
	out := make([]record.Record, n)
	for i := range out {
		id := fmt.Sprintf("%s-%d", tag, from+i)
		r, err := record.New([]byte(`{"resourceType":"Observation","id":"`+id+`","status":"final","code":{"text":"`+id+`"}}`),
			record.Provenance{Method: record.MethodImported, Importer: "fhir", System: "Clinic", OriginalID: id, FileSHA256: sha})
		if err != nil {
			t.Fatal(err)
		}
		out[i] = r
	}
	return out
}

// listed counts the records c lists whose name is tag-<n>.
func listed(t *testing.T, c *client, tag string) int {
	t.Helper()
	r := c.do("GET", "/api/v1/records?limit=1000", nil)
	want(t, r, http.StatusOK)
	var l api.RecordList
	r.decode(t, &l)
	n := 0
	for _, it := range l.Records {
		if rest, ok := strings.CutPrefix(it.Display, tag+"-"); ok && !strings.Contains(rest, "-") {
			n++
		}
	}
	return n
}

// rollbacks returns the import.rollback entries of c's audit log.
func rollbacks(t *testing.T, c *client) []api.AuditEntry {
	t.Helper()
	r := c.do("GET", "/api/v1/audit", nil)
	want(t, r, http.StatusOK)
	var l api.Audit
	r.decode(t, &l)
	var out []api.AuditEntry
	for _, e := range l.Entries {
		if e.Event == AuditImportRollback {
			out = append(out, e)
		}
	}
	return out
}
