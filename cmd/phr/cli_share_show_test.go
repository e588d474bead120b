package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// phr share show prints a share's link again, with what it holds, how it
// opens and its state; share commands take an ID's first characters;
// share list --ids prints IDs for scripts.
func TestShareShowAndPrefixes(t *testing.T) {
	c, _ := loggedIn(t)
	c.ok("log", "med", "metformin", "--dose", "500 mg")
	c.env["PHR_SHARE_PASSCODE"] = "4711"
	out := c.ok("share", "create", "medication", "--expires", "30m", "--label", "For Dr. Rivera", "--json")
	delete(c.env, "PHR_SHARE_PASSCODE")
	var created struct{ ID, Link string }
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatal(err)
	}
	prefix := created.ID[:6]
	if created.ID[0] == '-' {
		prefix = created.ID[:8] // still a prefix; after -- below
	}

	show := c.ok("share", "show", "--qr", "--", prefix)
	for _, want := range []string{created.Link, "1 records: medication", "For Dr. Rivera", "passcode", "State: active", "█"} {
		if !strings.Contains(show, want) {
			t.Errorf("share show lacks %q:\n%s", want, show)
		}
	}
	ids := strings.Fields(c.ok("share", "list", "--ids"))
	if len(ids) != 1 || ids[0] != created.ID {
		t.Fatalf("share list --ids: %v", ids)
	}
	if out := c.ok("share", "list"); !strings.Contains(out, "passcode") {
		t.Errorf("share list does not say the share asks for a passcode:\n%s", out)
	}
	if out := c.ok("share", "log", "--", prefix); strings.Contains(out, "not found") {
		t.Errorf("share log by prefix: %s", out)
	}
	if code, _, errOut := c.run("share", "log", "--", "ab"); code != exitUsage || !strings.Contains(errOut, "at least its first 4 characters") {
		t.Errorf("short prefix: %d %s", code, errOut)
	}
	if code, _, errOut := c.run("share", "revoke", "--", "zzzzzzzz"); code != exitFailure || !strings.Contains(errOut, "no share of yours has an ID starting") {
		t.Errorf("unknown prefix: %d %s", code, errOut)
	}
	c.ok("share", "revoke", "--", prefix)
	if show := c.ok("share", "show", "--", created.ID); !strings.Contains(show, "State: revoked") {
		t.Errorf("after revoke:\n%s", show)
	}
}
