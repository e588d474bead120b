package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browser starts Debian's headless chromium, or skips the test when it is
// missing (fails instead when CI is set: CI installs it).
func browser(t *testing.T) context.Context {
	t.Helper()
	path := ""
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); err == nil {
			path = p
		}
	}
	if path == "" {
		if p, err := exec.LookPath("chromium"); err == nil {
			path = p
		}
	}
	if path == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("chromium is not installed and CI is set")
		}
		t.Skip("chromium is not installed")
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path), chromedp.Flag("headless", true), chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-quic", true), chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1200, 900))
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	return ctx
}

func waitState(t *testing.T, ctx context.Context, state string) {
	t.Helper()
	js := fmt.Sprintf(`!!(document.getElementById('app') && document.getElementById('app').dataset.state === %q)`, state)
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			got, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('app') ? String(document.getElementById('app').dataset.state) : 'none'`))
			t.Fatalf("waiting for state %q (now %q): %v", state, got, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("browser: %v", err)
	}
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[*string](fmt.Sprintf(`(() => { const e = document.querySelector(%q); return e ? e.textContent : null; })()`, sel)))
	if err != nil || v == nil {
		t.Fatalf("no element %s: %v", sel, err)
	}
	return *v
}

// TestProviderOpensCLIShare: the whole path. The patient logs records,
// shares them with a passcode from the CLI through a real phrd; a provider
// opens the link in a real browser, types name and passcode, and reads
// the record; the XSS payload in a medication name stays text; after the
// patient revokes, the page says the link is gone.
func TestProviderOpensCLIShare(t *testing.T) {
	ctx := browser(t)
	c, _ := loggedIn(t)
	c.ok("log", "med", `<img src=x onerror="window.pwned=1">Metformin`, "--dose", "500 mg", "--frequency", "twice daily")
	c.ok("log", "allergy", "Penicillin", "--reaction", "hives", "--severity", "severe")
	for i, bp := range []string{"128/82", "131/85", "125/80"} {
		c.ok("log", "vital", "bp", bp, "--at", fmt.Sprintf("%dd ago", i+1))
	}
	var created struct{ ID, Link string }
	json.Unmarshal([]byte(c.ok("share", "create", "--expires", "1h", "--passcode", "2468", "--label", "For the clinic", "--json")), &created)
	if created.Link == "" {
		t.Fatal("no link")
	}
	do(t, ctx, chromedp.Navigate(created.Link))
	waitState(t, ctx, "form")
	do(t, ctx,
		chromedp.SendKeys(chromedp.CSS("#recipient"), "Dr. Rivera, City Clinic"),
		chromedp.SendKeys(chromedp.CSS("#passcode"), "2468"),
		chromedp.Click(chromedp.CSS("#open")))
	waitState(t, ctx, "record")
	allergies := text(t, ctx, `[data-section=allergies]`)
	meds := text(t, ctx, `[data-section=medications]`)
	vitals := text(t, ctx, `[data-section=vitals]`)
	pwned, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.pwned !== undefined`))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Penicillin", "hives"} {
		if !strings.Contains(strings.ToLower(allergies), strings.ToLower(want)) {
			t.Errorf("allergies %q lack %q", allergies, want)
		}
	}
	if !strings.Contains(meds, `<img src=x onerror="window.pwned=1">Metformin`) {
		t.Errorf("medication name not shown literally: %q", meds)
	}
	if pwned {
		t.Fatal("the XSS payload ran")
	}
	if !strings.Contains(vitals, "mmHg") {
		t.Errorf("vitals %q", vitals)
	}
	if log := c.ok("share", "log", "--", created.ID); !strings.Contains(log, "Dr. Rivera, City Clinic") {
		t.Errorf("share log: %s", log)
	}
	c.ok("share", "revoke", "--", created.ID)
	do(t, ctx, chromedp.Navigate("about:blank"), chromedp.Navigate(created.Link))
	waitState(t, ctx, "form")
	do(t, ctx,
		chromedp.SendKeys(chromedp.CSS("#recipient"), "Dr. Rivera"),
		chromedp.SendKeys(chromedp.CSS("#passcode"), "2468"),
		chromedp.Click(chromedp.CSS("#open")))
	waitState(t, ctx, "unavailable")
}
