package server

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/phr-project/phr/pkg/server/api"
)

// TestAuditApartFromShareAccesses: a link holder opens alice's share
// 1,000 times. Her own events (account creation, logins, a device) stay in
// GET /api/v1/audit, whose first page holds only them; the accesses are
// listed apart at GET /api/v1/audit/shares, at most 10 logged a minute
// per share and the rest counted, so that the share's log and the listing
// stay small and every access is accounted for; both listings page with
// a cursor, newest first, without gaps or repeats.
func TestAuditApartFromShareAccesses(t *testing.T) {
	ts := newTestServer(t, nil)
	alice := ts.signup("alice")
	want(t, alice.do("POST", "/api/v1/devices", api.DeviceRequest{Label: "phone", Passphrase: testPass}), http.StatusCreated)
	exp := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	var created api.ShareCreated
	r := alice.do("POST", "/api/v1/shares", `{"select":{"summary":true},"expires_at":"`+exp+`"}`)
	want(t, r, http.StatusCreated)
	r.decode(t, &created)
	start := time.Now()
	const n = 1000
	anon := ts.client()
	for i := range n {
		want(t, anon.do("POST", "/shl/"+created.ID, fmt.Sprintf(`{"recipient":"Flooder %d","embeddedLengthMax":0}`, i)), http.StatusOK)
	}
	minutes := int(time.Since(start)/time.Minute) + 2 // the minutes the accesses may span
	t.Logf("%d accesses in %v", n, time.Since(start).Round(time.Millisecond))

	var own api.Audit
	alice.do("GET", "/api/v1/audit", nil).decode(t, &own)
	events := map[string]bool{}
	for _, e := range own.Entries {
		events[e.Event] = true
		if e.Event == AuditShareAccess {
			t.Fatalf("a share access among the owner's events: %+v", e)
		}
	}
	for _, ev := range []string{AuditAccountCreate, AuditLogin, AuditDeviceAdd} {
		if !events[ev] {
			t.Errorf("the owner's first audit page lacks %s: %+v", ev, own.Entries)
		}
	}

	// Every page of the share accesses, five at a time.
	var all []api.AuditEntry
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 100 {
			t.Fatal("no end to the pages")
		}
		q := "/api/v1/audit/shares?limit=5"
		if cursor != "" {
			q += "&cursor=" + cursor
		}
		var page api.Audit
		r := alice.do("GET", q, nil)
		want(t, r, http.StatusOK)
		r.decode(t, &page)
		if len(page.Entries) > 5 {
			t.Fatalf("page of %d", len(page.Entries))
		}
		all = append(all, page.Entries...)
		if page.NextCursor == "" {
			break
		}
		if strings.Contains(page.NextCursor, created.ID) {
			t.Fatal("the cursor names the share")
		}
		cursor = page.NextCursor
	}
	var whole api.Audit
	alice.do("GET", "/api/v1/audit/shares?limit=1000", nil).decode(t, &whole)
	if !slices.EqualFunc(all, whole.Entries, func(a, b api.AuditEntry) bool {
		return a.Time.Equal(b.Time) && a.Label == b.Label && a.Method == b.Method && a.Counts["accesses"] == b.Counts["accesses"]
	}) {
		t.Fatalf("the pages (%d entries) differ from the whole listing (%d)", len(all), len(whole.Entries))
	}
	logged, counted := 0, 0
	for i, e := range all {
		if e.Event != AuditShareAccess || e.Ref != created.ID {
			t.Fatalf("entry %+v", e)
		}
		if i > 0 && e.Time.After(all[i-1].Time) {
			t.Fatalf("not newest first at %d", i)
		}
		if e.Method == "not-logged" {
			counted += e.Counts["accesses"]
		} else {
			logged++
		}
	}
	if logged+counted != n || logged > 10*minutes || len(all) > 11*minutes {
		t.Fatalf("%d entries: %d logged and %d counted of %d accesses", len(all), logged, counted, n)
	}
	var shares api.ShareList
	alice.do("GET", "/api/v1/shares", nil).decode(t, &shares)
	if sh := shares.Shares[0]; sh.Uses != n || sh.Unlogged != counted {
		t.Fatalf("share: %+v", sh)
	}
	// The owner's own listing pages too.
	var p1, p2 api.Audit
	alice.do("GET", "/api/v1/audit?limit=2", nil).decode(t, &p1)
	if len(p1.Entries) != 2 || p1.NextCursor == "" {
		t.Fatalf("first page: %+v", p1)
	}
	alice.do("GET", "/api/v1/audit?limit=100&cursor="+p1.NextCursor, nil).decode(t, &p2)
	if len(p2.Entries) == 0 || p2.NextCursor != "" || p2.Entries[0].Seq != p1.Entries[1].Seq-1 {
		t.Fatalf("second page after %+v: %+v", p1, p2)
	}
	if len(p1.Entries)+len(p2.Entries) != len(own.Entries) {
		t.Fatalf("pages of %d and %d entries, %d in all", len(p1.Entries), len(p2.Entries), len(own.Entries))
	}
	for _, bad := range []string{"x", "0", "1.2", "zz.1.1"} {
		want(t, alice.do("GET", "/api/v1/audit?cursor="+bad, nil), http.StatusBadRequest)
		want(t, alice.do("GET", "/api/v1/audit/shares?cursor="+bad, nil), http.StatusBadRequest)
	}
}
