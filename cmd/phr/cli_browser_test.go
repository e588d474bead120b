package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/phr-project/phr/internal/browsertest"
)

// browser opens a tab in Debian's headless chromium, or skips the test
// when it is missing (fails instead when CI is set: CI installs it).
func browser(t *testing.T) *browsertest.Tab {
	t.Helper()
	chrome := browsertest.Start(t, "the CLI's browser test", 1200, 900)
	return browsertest.NewTab(t, chrome, browsertest.Config{
		Timeout: 3 * time.Minute, Wait: 20 * time.Second, Poll: 50 * time.Millisecond,
		Where: func(tb *browsertest.Tab) string { return fmt.Sprintf("state %q", tb.AppData("state")) },
	})
}

// TestProviderOpensCLIShare: the whole path. The patient logs records,
// shares them with a passcode from the CLI through a real phrd; a provider
// opens the link in a real browser, types name and passcode, and reads
// the record; the XSS payload in a medication name stays text; after the
// patient revokes, the page says the link is gone.
func TestProviderOpensCLIShare(t *testing.T) {
	tb := browser(t)
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
	openWithPasscode(tb, created.Link, "Dr. Rivera, City Clinic", "2468", "record")
	allergies := tb.Text(`[data-section=allergies]`)
	meds := tb.Text(`[data-section=medications]`)
	vitals := tb.Text(`[data-section=vitals]`)
	pwned, err := chromedp.Run(tb.Ctx, chromedp.Evaluate[bool](`window.pwned !== undefined`))
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
	tb.Do(chromedp.Navigate("about:blank"))
	openWithPasscode(tb, created.Link, "Dr. Rivera", "2468", "unavailable")
}

// openWithPasscode opens link in the viewer as recipient with passcode and
// waits for the page's state to become want.
func openWithPasscode(tb *browsertest.Tab, link, recipient, passcode, want string) {
	tb.Do(chromedp.Navigate(link))
	tb.WaitAppData("state", "form")
	tb.Do(
		chromedp.SendKeys(chromedp.CSS("#recipient"), recipient),
		chromedp.SendKeys(chromedp.CSS("#passcode"), passcode),
		chromedp.Click(chromedp.CSS("#open")))
	tb.WaitAppData("state", want)
}
