package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/phr-project/phr/internal/browsertest"
	"github.com/phr-project/phr/pkg/app"
	"github.com/phr-project/phr/pkg/importers/all"
	"github.com/phr-project/phr/pkg/importers/qrimage"
	"github.com/phr-project/phr/pkg/server"
	"github.com/phr-project/phr/pkg/server/api"
	"github.com/phr-project/phr/pkg/share"
	"github.com/phr-project/phr/pkg/vault"
)

// Tests lower the cost of passphrases and share passcodes (scrypt).
func init() {
	vault.ScryptWorkFactor = 10
	share.SetPasscodeCostForTesting(10)
}

const (
	phoneW, phoneH     = 390, 844
	desktopW, desktopH = 1280, 900
	passphrase         = "correct horse battery"
)

// phrd is a real phrd on 127.0.0.1, whose public URL names localhost:
// passkeys belong to a host name, and localhost is one browsers treat as
// secure over http.
type phrd struct {
	srv  *server.Server
	url  string
	data string
	done chan struct{}
}

func startPhrd(t *testing.T) *phrd {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	base := "http://localhost:" + port
	data := filepath.Join(t.TempDir(), "data")
	s, err := server.New(server.Config{
		DataDir: data, PublicURL: base, VaultNoSync: true, Importers: all.Default(),
		Logger:         slog.New(slog.DiscardHandler),
		LoginPerClient: server.Rate{Events: 10000, Per: time.Minute, Burst: 10000},
	})
	if err != nil {
		t.Fatal(err)
	}
	p := &phrd{srv: s, url: base, data: data, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		if err := s.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	}()
	t.Cleanup(p.stop)
	return p
}

func (p *phrd) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p.srv.Shutdown(ctx)
	<-p.done
}

// api calls phrd as a Go client would.
func (p *phrd) api(t *testing.T, method, path, token string, body any) (int, []byte) {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, p.url+path, rd)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(res.Body)
	return res.StatusCode, buf.Bytes()
}

func (p *phrd) login(t *testing.T, user string) string {
	t.Helper()
	status, body := p.api(t, "POST", "/api/v1/sessions", "", api.SessionRequest{Username: user, Passphrase: passphrase})
	if status != http.StatusCreated {
		t.Fatalf("login: %d %s", status, body)
	}
	var s api.Session
	json.Unmarshal(body, &s)
	return s.Token
}

// The app's tabs: a record of what the page reported, failure messages
// that name the screen (#app's data-screen) and the end of what it shows.
type tab struct{ *browsertest.Tab }

func newTab(t *testing.T, parent context.Context, opts ...chromedp.ContextOption) *tab {
	t.Helper()
	return &tab{browsertest.NewTab(t, parent, browsertest.Config{
		Timeout: 4 * time.Minute, Wait: 20 * time.Second, Poll: 30 * time.Millisecond,
		Where: func(tb *browsertest.Tab) string {
			return fmt.Sprintf("screen %q: %s", tb.AppData("screen"), tb.Summary(-900))
		},
	}, opts...)}
}

func (tb *tab) value(sel string) string {
	tb.T.Helper()
	return tb.Eval(fmt.Sprintf(`document.querySelector(%q).value`, sel)).(string)
}

func (tb *tab) waitScreen(name string) {
	tb.T.Helper()
	tb.WaitFor("screen "+name, fmt.Sprintf(`document.getElementById('app') && document.getElementById('app').dataset.screen === %q && !document.querySelector('#app > .muted')`, name))
}

// shown waits for an error line or toast to say something.
func (tb *tab) shown(sel string) string {
	tb.T.Helper()
	tb.WaitFor(sel+" shown", fmt.Sprintf(`(() => { const e = document.querySelector(%q); return e && !e.hidden && e.textContent.trim() !== ''; })()`, sel))
	return tb.InnerText(sel)
}

// waitText waits until an element's text holds want.
func (tb *tab) waitText(sel, want string) {
	tb.T.Helper()
	tb.WaitFor(fmt.Sprintf("%s to say %q", sel, want), fmt.Sprintf(`(() => { const e = document.querySelector(%q); return e && !e.hidden && e.textContent.includes(%q); })()`, sel, want))
}

func (tb *tab) click(sel string) {
	tb.T.Helper()
	// Into the middle of the screen, as a thumb would scroll it, and
	// only once nothing (the tab bar, a toast) lies over it.
	tb.WaitFor(sel+" uncovered", fmt.Sprintf(`(() => {
	  const e = document.querySelector(%q);
	  if (!e) return false;
	  e.scrollIntoView({block: 'center'});
	  const r = e.getBoundingClientRect();
	  const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
	  return !!hit && (hit === e || e.contains(hit));
	})()`, sel))
	tb.Do(chromedp.Click(chromedp.CSS(sel)))
}

// fill replaces an input's value, as typing does.
func (tb *tab) fill(sel, text string) {
	tb.T.Helper()
	tb.WaitFor(sel, fmt.Sprintf(`document.querySelector(%q)`, sel))
	tb.Do(chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector(%q).value = ''`, sel)))
	tb.Do(chromedp.SendKeys(chromedp.CSS(sel), text))
}

func (tb *tab) go_(hash string) {
	tb.T.Helper()
	tb.Do(chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`location.hash = %q`, hash)))
}

func (tb *tab) viewport(w, h int64) {
	tb.T.Helper()
	if w < 600 {
		tb.Do(chromedp.EmulateViewport(w, h, chromedp.EmulateMobile, chromedp.EmulateTouch))
	} else {
		tb.Do(chromedp.EmulateViewport(w, h))
	}
}

func (tb *tab) scheme(dark bool) {
	tb.T.Helper()
	v := "light"
	if dark {
		v = "dark"
	}
	tb.Emulate("", map[string]string{"prefers-color-scheme": v})
}

// fits checks the phone layout: nothing scrolls sideways, and every
// control is a large touch target.
func (tb *tab) fits(what string) {
	tb.T.Helper()
	if w := tb.Eval(`document.documentElement.scrollWidth`).(float64); w > phoneW {
		wide := tb.Eval(fmt.Sprintf(`[...document.querySelectorAll('main *')].filter(e => e.getBoundingClientRect().right > %d && !e.closest('.chips')).slice(0, 5).map(e => e.tagName + '#' + e.id + '.' + e.className).join(', ')`, phoneW+1))
		tb.T.Errorf("%s: scrollWidth %v > %d (%v)", what, w, phoneW, wide)
	}
	small := tb.Eval(`[...document.querySelectorAll('main button, main select, main input:not([type=checkbox]):not([type=radio]):not([type=range]), main summary, main a.row-link, .tabs:not([hidden]) a')]
	  .filter(e => e.offsetParent !== null)
	  .filter(e => e.getBoundingClientRect().height < 44)
	  .map(e => e.tagName + '#' + e.id + ' ' + Math.round(e.getBoundingClientRect().height) + 'px').slice(0, 5).join(', ')`).(string)
	if small != "" {
		tb.T.Errorf("%s: touch targets under 44 px: %s", what, small)
	}
}

// shot saves what the screen shows as docs/img/app-NAME.png (when
// APP_SCREENSHOTS names a directory) and in the test's directory: the
// light and dark schemes at the current size.
func (tb *tab) shot(name string, top ...string) {
	tb.T.Helper()
	// A toast would hide what the screen shows; it goes.
	tb.Do(chromedp.Evaluate[chromedp.Void](`document.getElementById('toast').hidden = true`))
	scroll := `window.scrollTo(0, 0)`
	if len(top) > 0 {
		scroll = fmt.Sprintf(`document.querySelector(%q).scrollIntoView({block: 'start'})`, top[0])
	}
	for _, dark := range []bool{false, true} {
		tb.scheme(dark)
		n := name
		if dark {
			n += "-dark"
		}
		tb.Do(chromedp.Evaluate[chromedp.Void](scroll))
		time.Sleep(50 * time.Millisecond)
		save(tb.T, n, tb.Screenshot(chromedp.CaptureScreenshot()))
	}
	tb.scheme(false)
}

func save(t testing.TB, name string, png []byte) {
	t.Helper()
	browsertest.Save(t, "APP_SCREENSHOTS", "app", name, png)
}

var contains = browsertest.Contains

// virtualAuthenticator gives the tab a platform authenticator that keeps
// passkeys (resident keys) and verifies the user, as a phone does.
func (tb *tab) virtualAuthenticator() webauthn.AuthenticatorID {
	tb.T.Helper()
	var id webauthn.AuthenticatorID
	tb.CDP(func(ctx context.Context, tg *chromedp.Target) error {
		if _, err := cdp.Call(ctx, tg, webauthn.Enable, webauthn.EnableParams{}); err != nil {
			return err
		}
		res, err := cdp.Call(ctx, tg, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{Options: &webauthn.VirtualAuthenticatorOptions{
			Protocol: webauthn.AuthenticatorProtocolCtap2, Ctap2version: webauthn.Ctap2versionCtap21, Transport: webauthn.AuthenticatorTransportInternal,
			HasResidentKey: true, HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true,
			DefaultBackupEligibility: true, DefaultBackupState: true,
		}})
		id = res.AuthenticatorID
		return err
	})
	return id
}

func startBrowser(t *testing.T) context.Context {
	t.Helper()
	return browsertest.Start(t, "the app's browser test", desktopW, desktopH, chromedp.Flag("lang", "en-GB"))
}

// TestAppInBrowser is the patient's morning at the clinic, in Chromium at
// 390x844: sign in with the passphrase, import a document, add a
// medicine and a passkey (a virtual WebAuthn authenticator), sign in
// again with the passkey, log a dose, a symptom, a blood pressure and a
// note, read the records, make a share, read its QR code from a
// screenshot, open the link in a second browser context as the provider
// (the viewer) and see the dose, revoke it, and see the provider get the
// revoked page. Then the server's errors in words (an ended session, a
// busy vault, a lock-out, a file about another person), with what was
// typed kept; the service worker's cache (the shell only); and the app
// opening without the server. Every screen is checked for sideways
// scrolling, small touch targets, exceptions and CSP violations, and
// photographed light and dark (APP_SCREENSHOTS=dir saves them).
func TestAppInBrowser(t *testing.T) {
	chrome := startBrowser(t)
	p := startPhrd(t)
	if status, body := p.api(t, "POST", "/api/v1/accounts", "", api.CreateAccountRequest{Username: "alice", Passphrase: passphrase}); status != http.StatusCreated {
		t.Fatalf("account: %d %s", status, body)
	}

	pt := newTab(t, chrome)
	pt.viewport(phoneW, phoneH)
	pt.virtualAuthenticator()

	// "/" leads to the app, which asks to sign in.
	pt.Do(chromedp.Navigate(p.url + "/"))
	pt.waitScreen("signin")
	if u := pt.Eval(`location.pathname`); u != app.Path {
		t.Errorf("/ led to %v", u)
	}
	contains(t, "sign-in", pt.InnerText("#app"), "Sign in with a passkey", "Or with your passphrase", "Lost your passphrase?")
	pt.fits("sign-in")
	pt.shot("signin")

	// Sign in with the passphrase.
	pt.fill("#login-username", "alice")
	pt.fill("#login-passphrase", passphrase)
	pt.click("#login-submit")
	pt.waitScreen("today")
	if pt.Eval(`document.getElementById('tabs').hidden`) != false {
		t.Error("tabs hidden after sign-in")
	}

	// Records: import the README's example document (it names the
	// owner), with its report.
	pt.go_("#records")
	pt.waitScreen("records")
	pt.click("#records-import summary")
	pt.Do(chromedp.SetUploadFiles(chromedp.CSS("#import-file"), []string{abs(t, filepath.Join("..", "..", "docs", "examples", "alice-ccd.xml"))}))
	pt.click("#import-submit")
	pt.WaitFor("the import report", `document.querySelector('#import-report .report-file')`)
	contains(t, "import report", pt.InnerText("#import-report"), "Imported from a ccda file", "Added")
	pt.WaitFor("the timeline", `document.querySelectorAll('#timeline li[data-id]').length > 3`)

	// Today: add a medicine.
	pt.go_("#today")
	pt.waitScreen("today")
	pt.click("#today-meds details summary")
	pt.fill("#med-name", "Metformin")
	pt.fill("#med-dose", "500 mg")
	pt.fill("#med-frequency", "twice daily")
	pt.click("#med-submit")
	pt.WaitFor("Metformin in the list", `document.querySelector('#med-list li.med[data-med="Metformin"] button.take')`)

	// Account: add a passkey (it needs the passphrase).
	pt.go_("#account")
	pt.waitScreen("account")
	pt.WaitFor("the session list", `document.querySelector('#session-list li.session')`)
	pt.click("#passkey-details summary")
	pt.fill("#passkey-label", "Alice's phone")
	pt.fill("#passkey-passphrase", "a wrong passphrase")
	pt.click("#passkey-add")
	contains(t, "wrong passphrase", pt.shown("#passkey-add-error"), "That passphrase is not right")
	if pt.value("#passkey-label") != "Alice's phone" {
		t.Error("the label was lost after an error")
	}
	pt.fill("#passkey-passphrase", passphrase)
	pt.click("#passkey-add")
	pt.WaitFor("the passkey listed", `document.querySelector('#passkey-list li[data-key]')`)
	contains(t, "passkeys", pt.InnerText("#passkey-list"), "Alice's phone")

	// Sign out; sign in with the passkey, no username or passphrase.
	pt.click("#signout")
	pt.waitScreen("signin")
	pt.click("#passkey-signin")
	pt.waitScreen("today")
	pt.go_("#account")
	pt.waitScreen("account")
	pt.WaitFor("the session list", `document.querySelector('#session-list li.session')`)
	contains(t, "sessions", pt.InnerText("#session-list"), "Passkey — Alice's phone", "this device")
	pt.fits("account")
	pt.shot("account")

	// Today: log a dose in one tap, a symptom, a blood pressure, a note.
	pt.go_("#today")
	pt.waitScreen("today")
	pt.click(`#med-list li.med[data-med="Metformin"] button.take`)
	pt.waitText("#toast", "Metformin: dose taken at")
	pt.WaitFor("the dose logged", `document.querySelector('#med-list li.med[data-med="Metformin"] .sub') && document.querySelector('#med-list li.med[data-med="Metformin"] .sub').textContent.includes('taken today at')`)
	pt.fill("#symptom-name", "Headache")
	pt.Do(chromedp.Evaluate[chromedp.Void](`(() => { const s = document.getElementById('symptom-severity'); s.value = 6; s.dispatchEvent(new Event('input')); })()`))
	if got := pt.InnerText("#symptom-severity-text"); got != "6 of 10 — moderate" {
		t.Errorf("severity shows %q", got)
	}
	pt.fill("#symptom-note", "after screen time")
	pt.click("#symptom-submit")
	pt.waitText("#toast", "Headache (6 of 10) saved")
	pt.Do(chromedp.SetValue(chromedp.CSS("#vital-kind"), "bp"), chromedp.Evaluate[chromedp.Void](`document.getElementById('vital-kind').dispatchEvent(new Event('change'))`))
	pt.fill("#vital-value", "128")
	pt.fill("#vital-value2", "82")
	pt.click("#vital-submit")
	pt.waitText("#toast", "128/82 mmHg")
	pt.fill("#note-text", "Felt better after walking")
	pt.click("#note-submit")
	pt.WaitFor("four entries today", `document.querySelectorAll('#logged-list li').length >= 4`)
	contains(t, "logged today", pt.InnerText("#logged-list"), "Metformin", "Headache", "128/82 mmHg")
	pt.fits("today")
	pt.shot("today")

	// Records: the timeline by day, a filter, the dose in words.
	pt.go_("#records")
	pt.waitScreen("records")
	pt.WaitFor("the timeline", `document.querySelector('#timeline li[data-type=dose]')`)
	pt.fits("records")
	pt.shot("records")
	pt.click(`#records-filter button[data-kind=dose]`)
	pt.WaitFor("only doses", `[...document.querySelectorAll('#timeline li[data-id]')].every(li => li.dataset.type === 'dose') && document.querySelectorAll('#timeline li[data-id]').length === 1`)
	pt.click(`#timeline li[data-type=dose] a`)
	pt.waitScreen("record")
	detail := pt.InnerText("#record-detail")
	contains(t, "dose detail", detail, "Metformin", "Taken", "500 mg", "Entered by you")
	pt.click("#record-fhir summary")
	contains(t, "FHIR", pt.InnerText("#record-fhir pre"), `"resourceType": "MedicationAdministration"`, `"status": "completed"`)
	pt.Do(chromedp.Evaluate[chromedp.Void](`document.querySelector('#record-fhir').open = false`))
	pt.fits("record")
	pt.shot("record")
	pt.go_("#records")
	pt.waitScreen("records")
	pt.click(`#records-filter button[data-kind=all]`) // back to every kind (the filter is kept)

	// Share: the essentials with a passcode; the QR full screen.
	pt.go_("#share")
	pt.waitScreen("share")
	pt.click("#share-use-passcode")
	passcode := pt.value("#share-passcode")
	if len(passcode) != 6 {
		t.Fatalf("passcode %q", passcode)
	}
	pt.fill("#share-label", "For Dr. Rivera")
	pt.fits("share")
	pt.shot("share")
	pt.click("#share-create")
	pt.waitScreen("share-qr")
	link := pt.InnerText("#share-link")
	if !strings.HasPrefix(link, p.url+"/view#shlink:/") {
		t.Fatalf("link %q", link)
	}
	contains(t, "QR screen", pt.InnerText("#qr-view"), "For Dr. Rivera", "Passcode: "+passcode, "Valid until", "Copy link")
	pt.fits("QR")
	pt.shot("share-qr")
	// Read the QR code from a screenshot, as a provider's phone would.
	png := pt.Screenshot(chromedp.CaptureScreenshot())
	codes, err := qrimage.Scan(bytes.NewReader(png))
	if err != nil {
		t.Fatalf("reading the QR code from the screenshot: %v", err)
	}
	if len(codes) != 1 || codes[0] != link {
		t.Fatalf("the QR code reads %q, the link is %q", codes, link)
	}
	t.Logf("QR code read from a %d-byte screenshot: a link of %d characters", len(png), len(link))

	// The provider, in another browser context, opens the link.
	dr := newTab(t, chrome, chromedp.WithNewBrowserContext())
	dr.Do(chromedp.Navigate(codes[0]))
	dr.WaitFor("the viewer's form", `document.getElementById('app') && document.getElementById('app').dataset.state === 'form'`)
	dr.fill("#recipient", "Dr. Rivera, City Clinic")
	dr.fill("#passcode", passcode)
	dr.click("#open")
	dr.WaitFor("the record", `document.getElementById('app').dataset.state === 'record'`)
	contains(t, "provider's view", dr.InnerText("#patient"), "Alice Example")
	contains(t, "provider's doses", dr.InnerText(`[data-section=patient-reported]`), "Metformin", "Taken 1 of 2 expected", "Last dose:")
	contains(t, "provider's medicines", dr.InnerText(`[data-section=medications]`), "Metformin", "500 mg twice daily")
	dr.Clean()

	// The patient sees who opened it, and revokes it in one tap.
	pt.click("#share-done")
	pt.waitScreen("share")
	pt.WaitFor("the share listed", `document.querySelector('#share-list li[data-status=active]')`)
	pt.click(`#share-list li[data-status=active] button[data-log]`)
	pt.WaitFor("the access log", `document.querySelector('#share-list .share-log li')`)
	contains(t, "access log", pt.InnerText("#share-list .share-log"), "Dr. Rivera, City Clinic", "opened")
	pt.click(`#share-list li[data-status=active] button[data-revoke]`)
	pt.WaitFor("revoked", `document.querySelector('#share-list li[data-status=revoked]')`)
	contains(t, "share list", pt.InnerText("#share-list"), "For Dr. Rivera", "Revoked")
	pt.fits("share list")
	pt.shot("share-list", "#share-existing")

	// The provider opens the link again: revoked.
	dr.Do(chromedp.Navigate(codes[0]))
	dr.WaitFor("the viewer's form", `document.getElementById('app').dataset.state === 'form'`)
	dr.fill("#recipient", "Dr. Rivera, City Clinic")
	dr.fill("#passcode", passcode)
	dr.click("#open")
	dr.WaitFor("the unavailable page", `document.getElementById('app').dataset.state === 'unavailable'`)
	contains(t, "revoked link", dr.InnerText("#status"), "This link is no longer available")
	dr.Clean()

	// Desktop width, light and dark.
	pt.viewport(desktopW, desktopH)
	for _, s := range []string{"today", "records", "share"} {
		pt.go_("#" + s)
		pt.waitScreen(s)
		time.Sleep(200 * time.Millisecond)
		pt.shot(s + "-desktop")
	}
	pt.viewport(phoneW, phoneH)

	// A record edited and one deleted.
	t.Run("EditAndDelete", func(t *testing.T) {
		pt.go_("#records")
		pt.waitScreen("records")
		pt.click(`#timeline li[data-type=symptom] a`)
		pt.waitScreen("record")
		pt.click("#record-edit")
		pt.Do(chromedp.Evaluate[chromedp.Void](`(() => { const s = document.getElementById('edit-severity'); s.value = 3; s.dispatchEvent(new Event('input')); })()`))
		pt.fill("#edit-note", "better after a glass of water")
		pt.click("#edit-submit")
		pt.WaitFor("the edited record", `document.querySelector('#record-detail') && document.querySelector('#record-detail').textContent.includes('better after a glass of water')`)
		contains(t, "edited", pt.InnerText("#record-detail"), "3 of 10", "better after a glass of water")
		pt.go_("#records")
		pt.waitScreen("records")
		pt.click(`#timeline li[data-type=note] a`)
		pt.waitScreen("record")
		pt.click("#record-delete")
		pt.waitText("#record-delete", "Tap again to delete")
		pt.click("#record-delete")
		pt.waitScreen("records")
		pt.WaitFor("the timeline", `document.querySelector('#timeline li[data-id]')`)
		if n := pt.Eval(`document.querySelectorAll('#timeline li[data-type=note]').length`); n != float64(0) {
			t.Errorf("%v notes after deleting the note", n)
		}
	})

	// The backup (encrypted to a key the patient holds) and the export,
	// downloaded from the page.
	t.Run("BackupAndExport", func(t *testing.T) {
		dir := t.TempDir()
		pt.CDP(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir})
			return err
		})
		id, err := age.GenerateX25519Identity()
		if err != nil {
			t.Fatal(err)
		}
		pt.go_("#account")
		pt.waitScreen("account")
		pt.fill("#backup-recipient", id.Recipient().String())
		pt.fill("#backup-passphrase", passphrase)
		pt.click("#backup-submit")
		pt.waitText("#toast", "Backup downloaded")
		backup := waitFile(t, dir, "phr-backup-*.age")
		r, err := age.Decrypt(bytes.NewReader(backup), id)
		if err != nil {
			t.Fatalf("the backup does not open with its key: %v", err)
		}
		var plain bytes.Buffer
		plain.ReadFrom(r)
		if b := plain.Bytes(); len(b) < 100 || b[0] != 0x1f || b[1] != 0x8b {
			t.Errorf("the backup holds %d bytes, not gzip", len(b))
		}
		pt.click("#export-submit")
		pt.waitText("#toast", "records exported")
		var bundle struct {
			ResourceType string
			Entry        []struct{ Resource map[string]any }
		}
		if err := json.Unmarshal(waitFile(t, dir, "phr-export-*.json"), &bundle); err != nil {
			t.Fatal(err)
		}
		types := map[string]int{}
		for _, e := range bundle.Entry {
			types[e.Resource["resourceType"].(string)]++
		}
		if bundle.ResourceType != "Bundle" || types["MedicationAdministration"] != 1 || types["MedicationStatement"] < 2 || types["Patient"] < 1 {
			t.Errorf("export: %s with %v", bundle.ResourceType, types)
		}
	})

	// Errors in words, and nothing typed is lost.
	t.Run("SessionEnded", func(t *testing.T) {
		pt.go_("#today")
		pt.waitScreen("today")
		// The session ends elsewhere (signed out from another device).
		other := p.login(t, "alice")
		_, body := p.api(t, "GET", "/api/v1/sessions", other, nil)
		var list struct{ Sessions []server.SessionListItem }
		json.Unmarshal(body, &list)
		for _, s := range list.Sessions {
			if !s.Current {
				p.api(t, "DELETE", "/api/v1/sessions/"+s.ID, other, nil)
			}
		}
		pt.fill("#symptom-name", "Dizziness")
		pt.fill("#symptom-note", "when standing up")
		pt.click("#symptom-submit")
		pt.WaitFor("the sign-in sheet", `document.querySelector('dialog#reauth[open]')`)
		contains(t, "sheet", pt.InnerText("#reauth"), "Sign in again", "what you were doing is sent once you are in")
		pt.shot("reauth")
		pt.click("#reauth #passkey-signin")
		pt.waitText("#toast", "Dizziness (5 of 10) saved")
		if pt.Eval(`!!document.querySelector('dialog#reauth')`) != false {
			t.Error("the sheet stayed")
		}
		p.api(t, "DELETE", "/api/v1/sessions/current", other, nil)
		// Sign out everywhere, and the app says so when it next asks.
		_, body = p.api(t, "GET", "/api/v1/sessions", p.login(t, "alice"), nil)
		json.Unmarshal(body, &list)
		tok := p.login(t, "alice")
		for _, s := range list.Sessions {
			p.api(t, "DELETE", "/api/v1/sessions/"+s.ID, tok, nil)
		}
		p.api(t, "DELETE", "/api/v1/sessions/current", tok, nil)
		pt.fill("#note-text", "A note typed while signed out")
		pt.click("#note-submit")
		pt.WaitFor("the sign-in sheet", `document.querySelector('dialog#reauth[open]')`)
		pt.click("#reauth-cancel")
		contains(t, "ended session", pt.shown("#note-error"), "You were signed out", "what you typed is still here")
		if v := pt.value("#note-text"); v != "A note typed while signed out" {
			t.Errorf("the note became %q", v)
		}
	})

	t.Run("VaultBusy", func(t *testing.T) {
		// Every session has ended, so phrd has closed the vault; the
		// phr CLI (here: this test) opens it and holds it.
		pt.Do(chromedp.Evaluate[chromedp.Void](`sessionStorage.clear()`))
		pt.Do(chromedp.Navigate(p.url + "/app/#signin"))
		pt.waitScreen("signin")
		held := holdVault(t, p.data)
		pt.fill("#login-username", "alice")
		pt.fill("#login-passphrase", passphrase)
		pt.click("#login-submit")
		contains(t, "busy", pt.shown("#login-error"), "Your record is busy right now", "Nothing was lost", "Try again in 5 seconds")
		if pt.value("#login-passphrase") != passphrase || pt.value("#login-username") != "alice" {
			t.Error("the sign-in form lost what was typed")
		}
		pt.shot("signin-busy")
		held.Close()
		pt.click("#login-submit")
		pt.waitScreen("today")
	})

	t.Run("LockedOut", func(t *testing.T) {
		if status, body := p.api(t, "POST", "/api/v1/accounts", "", api.CreateAccountRequest{Username: "bob", Passphrase: passphrase}); status != http.StatusCreated {
			t.Fatalf("account: %d %s", status, body)
		}
		bt := newTab(t, chrome, chromedp.WithNewBrowserContext())
		bt.viewport(phoneW, phoneH)
		bt.Do(chromedp.Navigate(p.url + "/app/"))
		bt.waitScreen("signin")
		bt.fill("#login-username", "bob")
		var msg string
		for i := range 6 {
			bt.fill("#login-passphrase", fmt.Sprintf("guess number %d", i))
			bt.click("#login-submit")
			msg = bt.shown("#login-error")
			bt.Do(chromedp.Evaluate[chromedp.Void](`document.getElementById('login-error').hidden = true`))
		}
		contains(t, "locked out", msg, "Too many attempts", "try again in")
		if bt.value("#login-passphrase") != "guess number 5" {
			t.Error("the passphrase field was emptied")
		}
		bt.Clean()
	})

	t.Run("PatientMismatch", func(t *testing.T) {
		pt.go_("#records")
		pt.waitScreen("records")
		pt.click("#records-import summary")
		other := filepath.Join("..", "..", "..", "shared", "testdata", "fhir", "synthea-r4", "Clemente_Kreiger_1484a42d-0eaf-4654-9cbf-6b050a5cd73b.json")
		pt.Do(chromedp.SetUploadFiles(chromedp.CSS("#import-file"), []string{abs(t, other)}))
		pt.click("#import-submit")
		contains(t, "mismatch", pt.shown("#import-error"), "This file is about another person", "Nothing was imported", "import it anyway")
		pt.WaitFor("the offer to import anyway", `document.querySelector('#import-anyway')`)
		if n := pt.Eval(`document.getElementById('import-file').files.length`); n != float64(1) {
			t.Errorf("the chosen file is gone (%v)", n)
		}
		pt.fits("import error")
		pt.shot("import-mismatch", "#records-import")
	})

	// A new account from the app, and the recovery code flow.
	t.Run("CreateAndRecover", func(t *testing.T) {
		ct := newTab(t, chrome, chromedp.WithNewBrowserContext())
		ct.viewport(phoneW, phoneH)
		ct.Do(chromedp.Navigate(p.url + "/app/#create"))
		ct.waitScreen("create")
		ct.fill("#create-username", "carol")
		ct.fill("#create-new", "a passphrase for carol")
		ct.fill("#create-again", "a different one")
		ct.click("#create-submit")
		contains(t, "mismatch", ct.shown("#create-error"), "not the same")
		ct.fill("#create-again", "a passphrase for carol")
		ct.click("#create-submit")
		ct.waitScreen("recovery-code")
		code := strings.TrimSpace(ct.InnerText("#recovery-code-value"))
		if !vault.IsRecoveryCode(code) {
			t.Fatalf("recovery code %q", code)
		}
		ct.fits("recovery code")
		ct.shot("recovery-code")
		ct.click("#code-saved")
		ct.waitScreen("today")
		ct.Do(chromedp.Evaluate[chromedp.Void](`sessionStorage.clear()`))

		// Carol forgot her passphrase.
		ct.Do(chromedp.Navigate(p.url + "/app/#recover"))
		ct.waitScreen("recover")
		if ct.value("#recover-username") != "carol" {
			t.Error("the username was not remembered")
		}
		ct.fill("#recover-code", "AAAAA-AAAAA-AAAAA-AAAAA-AAAAAA")
		ct.fill("#recover-new", "carol's new passphrase")
		ct.fill("#recover-again", "carol's new passphrase")
		ct.click("#recover-submit")
		contains(t, "wrong code", ct.shown("#recover-error"), "recovery code do not match")
		ct.fill("#recover-code", strings.ToLower(code))
		ct.click("#recover-submit")
		ct.waitScreen("recovery-code")
		if next := strings.TrimSpace(ct.InnerText("#recovery-code-value")); next == code || !vault.IsRecoveryCode(next) {
			t.Errorf("new recovery code %q (old %q)", next, code)
		}
		ct.click("#code-saved")
		ct.waitScreen("today")
		ct.Clean()
	})

	// The service worker keeps the shell and nothing else.
	t.Run("ServiceWorkerCache", func(t *testing.T) {
		pt.WaitFor("the service worker", `navigator.serviceWorker.controller || true`)
		pt.Eval(`navigator.serviceWorker.ready.then(() => true)`)
		raw := pt.Eval(`(async () => {
		  const out = [];
		  for (const name of await caches.keys()) {
		    const c = await caches.open(name);
		    for (const req of await c.keys()) {
		      const res = await c.match(req);
		      out.push({cache: name, url: req.url, body: await res.text()});
		    }
		  }
		  return JSON.stringify(out);
		})()`).(string)
		var cached []struct{ Cache, URL, Body string }
		if err := json.Unmarshal([]byte(raw), &cached); err != nil {
			t.Fatal(err)
		}
		shell := map[string]bool{}
		for _, s := range app.Shell() {
			shell[p.url+s] = true
		}
		if len(cached) < len(shell) {
			t.Errorf("%d files cached, the shell has %d", len(cached), len(shell))
		}
		for _, c := range cached {
			if !strings.HasPrefix(c.Cache, "phr-shell-") || !shell[c.URL] {
				t.Errorf("cached outside the shell: %s in %s", c.URL, c.Cache)
			}
			for _, secret := range []string{"Metformin", "Headache", "Alice Example", "alice", link[strings.Index(link, "#"):], passcode} {
				if strings.Contains(c.Body, secret) {
					t.Errorf("%s in the cache holds %q", c.URL, secret)
				}
			}
		}
	})

	// Without the server, the app still opens (from the service worker)
	// and says what is wrong.
	t.Run("Offline", func(t *testing.T) {
		pt.go_("#today")
		pt.waitScreen("today")
		pt.Clean()
		p.stop()
		pt.Do(chromedp.Reload())
		pt.WaitFor("the app from the cache", `document.getElementById('app') && document.getElementById('app').dataset.screen === 'today'`)
		contains(t, "offline", pt.shown("#meds-error"), "No connection to your phr server", "not on this phone")
		pt.shot("offline")
	})
}

// holdVault opens the account's vault file as the phr CLI would, which
// holds it until Close.
func holdVault(t *testing.T, data string) interface{ Close() error } {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(data, "vaults", "*.phr"))
	for _, f := range files {
		v, err := vault.Open(f, vault.Passphrase(passphrase), &vault.Options{LockTimeout: time.Second})
		if err == nil {
			return v
		}
	}
	t.Fatalf("no vault of %v opens", files)
	return nil
}

func abs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// waitFile waits for a download matching pattern in dir and returns it.
func waitFile(t *testing.T, dir, pattern string) []byte {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		m, _ := filepath.Glob(filepath.Join(dir, pattern))
		if len(m) == 1 {
			if b, err := os.ReadFile(m[0]); err == nil && len(b) > 0 {
				return b
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no download %s in %s", pattern, dir)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
