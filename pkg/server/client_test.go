package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/phr-project/phr/pkg/importers"
	"github.com/phr-project/phr/pkg/server/api"
)

// TestClient drives the API through api.Client, as `phr remote` would.
func TestClient(t *testing.T) {
	reg := &importers.Registry{}
	reg.Register(lines{})
	ts := newTestServer(t, func(c *Config) { c.Importers = reg })
	ctx := context.Background()
	c := &api.Client{BaseURL: ts.url}
	if _, err := c.CreateAccount(ctx, "alice", testPass); err != nil {
		t.Fatal(err)
	}
	_, err := c.CreateAccount(ctx, "alice", testPass)
	var se *api.StatusError
	if !errors.As(err, &se) || se.Status != http.StatusConflict || se.Err.Code != api.CodeConflict {
		t.Fatalf("duplicate account: %v", err)
	}
	if _, err := c.Login(ctx, api.SessionRequest{Username: "alice", Passphrase: testPass}); err != nil {
		t.Fatal(err)
	}
	dev, err := c.CreateDevice(ctx, "cli", testPass)
	if err != nil {
		t.Fatal(err)
	}
	phone := &api.Client{BaseURL: ts.url}
	if _, err := phone.Login(ctx, api.SessionRequest{Username: "alice", DeviceCredential: dev.Credential}); err != nil {
		t.Fatal(err)
	}
	rec, err := phone.AddRecord(ctx, api.LogEntry{Log: "vital", Kind: "hr", Value: "66"})
	if err != nil {
		t.Fatal(err)
	}
	res := strings.Replace(string(rec.Resource), `"final"`, `"amended"`, 1)
	upd, err := c.UpdateRecord(ctx, rec.ID, rec.Version, json.RawMessage(res))
	if err != nil || upd.Version != 2 {
		t.Fatalf("update: %v %v", upd.Version, err)
	}
	if _, err := phone.UpdateRecord(ctx, rec.ID, 1, json.RawMessage(res)); !errors.As(err, &se) || se.Status != http.StatusPreconditionFailed {
		t.Fatalf("stale update: %v", err)
	}
	if rep, err := phone.Import(ctx, "x.txt", strings.NewReader("#lines\nCondition gout\n"), "", false, false); err != nil || rep.Files[0].Added != 1 {
		t.Fatalf("import: %+v %v", rep, err)
	}
	if err := phone.DeleteRecord(ctx, rec.ID, 2); err != nil {
		t.Fatal(err)
	}
	ch, err := c.Changes(ctx, 0, 0)
	if err != nil || len(ch.Changes) != 3 || !ch.Changes[2].Deleted || ch.Changes[2].ID != rec.ID {
		t.Fatalf("changes: %+v %v", ch, err)
	}
	list, err := c.Records(ctx, nil)
	if err != nil || len(list.Records) != 2 {
		t.Fatalf("records: %+v %v", list, err)
	}
	if devs, err := c.Devices(ctx); err != nil || len(devs) != 1 {
		t.Fatalf("devices: %v %v", devs, err)
	}
	if err := c.RemoveDevice(ctx, dev.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := phone.Record(ctx, rec.ID); !errors.As(err, &se) || se.Status != http.StatusUnauthorized {
		t.Fatalf("revoked device: %v", err)
	}
	if a, err := c.Audit(ctx, 50, ""); err != nil || len(a.Entries) < 4 {
		t.Fatalf("audit: %+v %v", a, err)
	}
	if err := c.Logout(ctx); err != nil {
		t.Fatal(err)
	}
}
