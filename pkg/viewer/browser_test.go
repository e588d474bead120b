package viewer

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/phr-project/phr/internal/browsertest"
	"github.com/phr-project/phr/pkg/fhirdoc"
	"github.com/phr-project/phr/pkg/record"
	"github.com/phr-project/phr/pkg/share"
)

// The SHL test vectors shared by the project, and their key.
var shlVectors = filepath.Join("..", "..", "..", "shared", "testdata", "shl")

const vectorKey = "rxTgYlOaKJPFtcEd0qcceN8wEU4p94SqAwIWQe6uX7Q"

func b64std(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// The viewer's tabs: a record of what the page reported, failure messages
// that name the page's state (#app's data-state) and what it shows.
type tab struct{ *browsertest.Tab }

func startBrowser(t *testing.T) context.Context {
	return browsertest.Start(t, "the viewer's browser tests", 1200, 900)
}

func newTab(t *testing.T, browser context.Context) *tab {
	t.Helper()
	return &tab{browsertest.NewTab(t, browser, browsertest.Config{
		Timeout: 30 * time.Second, Wait: 15 * time.Second, Poll: 25 * time.Millisecond, Warnings: true,
		Where: func(tb *browsertest.Tab) string {
			return fmt.Sprintf("page state %q: %s", tb.AppData("state"), tb.Summary(400))
		},
	})}
}

func (tb *tab) state() string { return tb.AppData("state") }

// openAs opens link in a new tab, unlocks it as recipient with passcode,
// and waits for the viewer to reach state.
func openAs(t *testing.T, browser context.Context, link, recipient, passcode, state string) *tab {
	t.Helper()
	tb := newTab(t, browser)
	tb.open(link)
	tb.unlock(recipient, passcode)
	tb.waitState(state)
	return tb
}

func (tb *tab) waitState(want string) {
	tb.T.Helper()
	tb.WaitAppData("state", want)
}

// open navigates to link and waits until the page has left "loading".
func (tb *tab) open(link string) {
	tb.T.Helper()
	tb.Do(chromedp.Navigate(link))
	tb.WaitFor("the page to start", `document.getElementById('app') && document.getElementById('app').dataset.state !== 'loading'`)
}

// unlock fills in the form and submits it.
func (tb *tab) unlock(recipient, passcode string) {
	tb.T.Helper()
	tb.waitState("form")
	tb.Do(chromedp.Evaluate[chromedp.Void](`document.getElementById('recipient').value = ''`))
	tb.Do(chromedp.SendKeys(chromedp.CSS("#recipient"), recipient))
	if passcode != "" {
		tb.Do(chromedp.SendKeys(chromedp.CSS("#passcode"), passcode))
	}
	tb.Do(chromedp.Click(chromedp.CSS("#open")))
}

// screenshot saves a full-page PNG (see save).
func (tb *tab) screenshot(name string) {
	tb.T.Helper()
	tb.save(name, tb.Screenshot(chromedp.FullScreenshot(100)))
}

var contains = browsertest.Contains

func readVector(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(shlVectors, name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// openVector opens, as recipient, a share of p that embeds the SHL test
// vector file (a JWE of contentType under vectorKey), and waits for the
// record.
func openVector(t *testing.T, browser context.Context, host *fakeHost, p share.Payload, contentType, file, recipient string) *tab {
	t.Helper()
	key, err := share.DecodeKey(vectorKey)
	if err != nil {
		t.Fatal(err)
	}
	link := host.add(t, strings.TrimSuffix(file, ".txt"), key, p, &fakeShare{
		manifest: share.Manifest{Files: []share.ManifestFile{{ContentType: contentType, Embedded: readVector(t, file)}}},
	})
	return openAs(t, browser, link, recipient, "", "record")
}

func TestViewerInBrowser(t *testing.T) {
	browser := startBrowser(t)
	host := newFakeHost(t)

	base := time.Now().AddDate(0, 0, -10).Truncate(24 * time.Hour).Add(9 * time.Hour)
	future := time.Now().Add(time.Hour).Unix()

	// The good share: the record embedded (compressed), the documents by
	// location.
	goodKey := share.NewKey()
	goodLink := host.add(t, "good", goodKey, share.Payload{Exp: future, Label: "Diabetes follow-up"}, &fakeShare{
		manifest: share.Manifest{Files: []share.ManifestFile{
			{ContentType: share.ContentTypeFHIR, Embedded: encrypt(t, goodKey, share.ContentTypeFHIR, testRecord(base), true)},
			{ContentType: share.ContentTypeFHIR, Location: host.addFile("docs", encrypt(t, goodKey, share.ContentTypeFHIR, testDocuments(base), false))},
		}},
	})

	t.Run("CSPHeader", func(t *testing.T) {
		resp, err := http.Get(host.srv.URL + Path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Content-Security-Policy"); got != ContentSecurityPolicy {
			t.Errorf("Content-Security-Policy on %s = %q", Path, got)
		}
	})

	t.Run("GoodShare", func(t *testing.T) {
		tb := newTab(t, browser)
		tb.open(goodLink)
		tb.waitState("form")
		contains(t, "form", tb.Text("#status"), "Diabetes follow-up", "Your name / organization", "Shared by the patient; expires")
		if n := tb.Count("#passcode"); n != 0 {
			t.Errorf("a link without P asks for a passcode")
		}
		tb.unlock("Dr. Ada Test, City Clinic", "")
		tb.waitState("record")

		if got := host.lastRecipient(); got != "Dr. Ada Test, City Clinic" {
			t.Errorf("manifest recipient = %q", got)
		}
		order := tb.Eval(`[...document.querySelectorAll('#record section[data-section]')].map(s => s.dataset.section).join(' ')`).(string)
		if want := "allergies medications problems results vitals trends immunizations patient-reported documents other"; order != want {
			t.Errorf("sections = %q, want %q", order, want)
		}
		contains(t, "patient", tb.Text("#patient"), "Alex Rivera", "12 Apr 1980", "Female", "MRN-0042")
		contains(t, "share info", tb.Text("#share-info"), "Diabetes follow-up", "Shared by the patient; expires", "Dr. Ada Test, City Clinic")
		contains(t, "allergies", tb.Text(`[data-section=allergies]`), "Penicillin", "High criticality", "Hives (severe)")

		meds := tb.Text(`[data-section=medications]`)
		contains(t, "medications", meds, "Metformin 500 mg tablet", "500 mg twice daily", xssName, "1 tablet daily", "Other medications (not active)", "Lisinopril 10 mg")
		if got := tb.Eval(`typeof window.pwned`); got != "undefined" {
			t.Errorf("window.pwned is %v: record data ran as code", got)
		}
		if n := tb.Count("#record img, #record script"); n != 0 {
			t.Errorf("%d img/script elements in the record", n)
		}
		if n := tb.Count("script"); n != 1 {
			t.Errorf("%d script elements on the page, want only the module main.mjs", n)
		}

		contains(t, "problems", tb.Text(`[data-section=problems]`), "Type 2 diabetes mellitus", "Active", "Mar 2019")
		results := tb.Text(`[data-section=results]`)
		contains(t, "results", results, "LDL cholesterol", "162 mg/dL", "≤ 130 mg/dL", "High", "Hemoglobin A1c", "7.4%")
		// LDL and the two later A1c values lie above their reference
		// ranges; the first A1c is interpreted H.
		if n := tb.Count(`[data-section=results] tr.abnormal`); n != 4 {
			t.Errorf("%d abnormal results flagged, want 4", n)
		}
		contains(t, "vitals", tb.Text(`[data-section=vitals]`), "Blood pressure", "128/82 mmHg", "Body weight", "81.5 kg", "Blood glucose", "112 mg/dL")

		for _, c := range []struct {
			sel  string
			want int
		}{
			{`svg[data-series=bp] circle.pt-0`, 5},
			{`svg[data-series=bp] circle.pt-1`, 5},
			{`svg[data-series=weight] circle.pt`, 4},
			{`svg[data-series=glucose] circle.pt`, 3},
			{`svg[data-series=hr] circle.pt`, 2},
			{`svg[data-series=lab] circle.pt`, 2}, // the last 3 months of 6 by default
			{`svg.chart`, 5},
			{`svg[data-series=bp] circle title`, 10},
		} {
			if n := tb.Count(c.sel); n != c.want {
				t.Errorf("%s: %d, want %d", c.sel, n, c.want)
			}
		}
		contains(t, "bp chart", tb.Text(`figure[data-series=bp]`), "Blood pressure (mmHg)", "Latest 128/82 mmHg", "Systolic", "Diastolic")
		contains(t, "immunizations", tb.Text(`[data-section=immunizations]`), "Influenza vaccine", "1 Oct 2024", "Lot FLU-123", "reported by the patient")
		contains(t, "patient-reported", tb.Text(`[data-section=patient-reported]`), "Headache", "6/10", "Dizziness", "3/10", "after standing up", "Doses taken", "500 mg")

		docs := tb.Text(`[data-section=documents]`)
		contains(t, "documents", docs, "Feeling better since the dose change.", "<b>not bold</b>", "Discharge summary, City Hospital", "Download discharge.pdf")
		if n := tb.Count(`[data-section=documents] a[download][href^="blob:"]`); n != 1 {
			t.Errorf("%d blob download links, want 1", n)
		}
		contains(t, "other", tb.Text(`[data-section=other]`), "Coverage", "1 record")
		if host.fileDownloads() == 0 {
			t.Error("the location file was never fetched")
		}
		tb.screenshot("record-desktop")
		tb.Clean()
	})

	t.Run("Phone", func(t *testing.T) {
		tb := newTab(t, browser)
		tb.Do(chromedp.EmulateViewport(375, 812, chromedp.EmulateMobile))
		tb.open(goodLink)
		tb.waitState("form")
		if w := tb.Eval(`document.documentElement.scrollWidth`).(float64); w > 375 {
			t.Errorf("form: scrollWidth %v > 375", w)
		}
		tb.unlock("Dr. Ada Test", "")
		tb.waitState("record")
		if w := tb.Eval(`document.documentElement.scrollWidth`).(float64); w > 375 {
			wide := tb.Eval(`[...document.querySelectorAll('#record *')].filter(e => e.getBoundingClientRect().right > 376).slice(0, 5).map(e => e.tagName + ' ' + (typeof e.className === 'string' ? e.className : '')).join(', ')`)
			t.Errorf("record: scrollWidth %v > 375 (wide: %v)", w, wide)
		}
		tb.screenshot("record-phone")
		tb.Clean()
	})

	t.Run("Passcode", func(t *testing.T) {
		key := share.NewKey()
		link := host.add(t, "pass", key, share.Payload{Exp: future, Flag: share.FlagPasscode, Label: "Passcode share"}, &fakeShare{
			passcode: "4711", attempts: 3,
			manifest: share.Manifest{Files: []share.ManifestFile{{ContentType: share.ContentTypeFHIR, Embedded: encrypt(t, key, share.ContentTypeFHIR, testRecord(base), true)}}},
		})
		tb := newTab(t, browser)
		tb.open(link)
		tb.unlock("Dr. Wrong", "1234")
		tb.WaitFor("the wrong-passcode message", `!document.getElementById('form-error').hidden`)
		msg := tb.Text("#form-error")
		contains(t, "wrong passcode", msg, "Wrong passcode — 2 attempts left")
		if s := tb.state(); s != "form" {
			t.Errorf("after a wrong passcode the state is %q, want the form again", s)
		}
		tb.screenshot("wrong-passcode")
		tb.Do(chromedp.SendKeys(chromedp.CSS("#passcode"), "4711"), chromedp.Click(chromedp.CSS("#open")))
		tb.waitState("record")
		contains(t, "allergies", tb.Text(`[data-section=allergies]`), "Penicillin")
		tb.Clean()
	})

	t.Run("Locked", func(t *testing.T) {
		key := share.NewKey()
		link := host.add(t, "lock", key, share.Payload{Exp: future, Flag: share.FlagPasscode}, &fakeShare{
			passcode: "4711", attempts: 1,
			manifest: share.Manifest{Files: []share.ManifestFile{{ContentType: share.ContentTypeFHIR, Embedded: encrypt(t, key, share.ContentTypeFHIR, testRecord(base), false)}}},
		})
		tb := openAs(t, browser, link, "Dr. Wrong", "0000", "locked")
		contains(t, "locked", tb.Text("#status"), "This link is locked", "Too many wrong passcodes")
		tb.Clean()
	})

	t.Run("Expired", func(t *testing.T) {
		key := share.NewKey()
		link := host.add(t, "expired", key, share.Payload{Exp: time.Now().Add(-time.Hour).Unix(), Label: "Old share"}, &fakeShare{
			manifest: share.Manifest{Files: []share.ManifestFile{{ContentType: share.ContentTypeFHIR, Embedded: encrypt(t, key, share.ContentTypeFHIR, testRecord(base), false)}}},
		})
		tb := newTab(t, browser)
		tb.open(link)
		tb.waitState("expired")
		contains(t, "expired", tb.Text("#status"), "This link has expired", "Ask the patient for a new link")
		if n := host.requestCount("expired"); n != 0 {
			t.Errorf("an expired link made %d requests; the expiry must be checked first", n)
		}
		tb.screenshot("expired")
		tb.Clean()
	})

	t.Run("Revoked", func(t *testing.T) {
		key := share.NewKey()
		link := host.add(t, "revoked", key, share.Payload{Exp: future}, &fakeShare{revoked: true})
		tb := openAs(t, browser, link, "Dr. Late", "", "unavailable")
		contains(t, "revoked", tb.Text("#status"), "This link is no longer available", "revoked")
		tb.Clean()
	})

	t.Run("Malformed", func(t *testing.T) {
		badKey := base64.RawURLEncoding.EncodeToString([]byte(`{"url":"https://example.org/m","key":"short"}`))
		noURL := base64.RawURLEncoding.EncodeToString([]byte(`{"key":"` + vectorKey + `"}`))
		for _, c := range []struct{ name, fragment, reason string }{
			{"garbage", "shlink:/not*base64!", "characters"},
			{"not-json", "shlink:/" + base64.RawURLEncoding.EncodeToString([]byte("hello")), "cannot be decoded"},
			{"bad-key", "shlink:/" + badKey, "key"},
			{"no-url", "shlink:/" + noURL, "https address"},
			{"no-prefix", "just-some-text", "does not contain"},
		} {
			t.Run(c.name, func(t *testing.T) {
				tb := newTab(t, browser)
				tb.open(host.srv.URL + Path + "#" + c.fragment)
				tb.waitState("malformed")
				contains(t, c.name, tb.Text("#status"), "This link cannot be read", c.reason)
				if h := tb.Eval(`location.hash`); h != "" {
					t.Errorf("the fragment is left in the address: %v", h)
				}
				if c.name == "garbage" {
					tb.screenshot("malformed")
				}
				tb.Clean()
			})
		}
	})

	t.Run("DirectU", func(t *testing.T) {
		key := share.NewKey()
		link := host.add(t, "direct", key, share.Payload{Exp: future, Flag: share.FlagDirect, Label: "Direct file"}, &fakeShare{
			direct: encrypt(t, key, share.ContentTypeFHIR, testRecord(base), true),
		})
		tb := openAs(t, browser, link, "Urgent Care Downtown", "", "record")
		if got := host.lastRecipient(); got != "Urgent Care Downtown" {
			t.Errorf("U-flag GET recipient = %q", got)
		}
		contains(t, "medications", tb.Text(`[data-section=medications]`), "Metformin 500 mg tablet")
		tb.Clean()
	})

	t.Run("KTC", func(t *testing.T) {
		// A Kill-the-Clipboard share as phr makes it: a U link to a
		// patient-shared bundle with the FHIR-rendered PDF and the
		// patient's story as PDF documents.
		rec := func(js string) record.Record {
			r, err := record.New([]byte(js), record.Provenance{Method: record.MethodSelf, Author: "patient"})
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		data, err := fhirdoc.BuildKTC(rec(`{"resourceType":"Patient","name":[{"given":["Jessica"],"family":"Argonaut"}],"birthDate":"1985-03-15"}`), []record.Record{
			rec(`{"resourceType":"AllergyIntolerance","code":{"text":"Penicillin"},"criticality":"high","clinicalStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical","code":"active"}]}}`),
			rec(`{"resourceType":"MedicationStatement","status":"active","medicationCodeableConcept":{"text":"Lisinopril 10 mg"},"effectiveDateTime":"2025-11-02"}`),
		}, fhirdoc.KTCOptions{Now: time.Now(), Story: "Please call my daughter first."})
		if err != nil {
			t.Fatal(err)
		}
		key := share.NewKey()
		link := host.add(t, "ktc", key, share.Payload{Exp: future, Flag: share.FlagDirect, Label: "Check-in"}, &fakeShare{
			direct: encrypt(t, key, share.ContentTypeFHIR, json.RawMessage(data), false),
		})
		tb := openAs(t, browser, link, "Verona Health System", "", "record")
		contains(t, "patient", tb.Text("#patient"), "Jessica Argonaut", "15 Mar 1985")
		contains(t, "allergies", tb.Text(`[data-section=allergies]`), "Penicillin")
		contains(t, "medications", tb.Text(`[data-section=medications]`), "Lisinopril 10 mg")
		docs := tb.Text(`[data-section=documents]`)
		contains(t, "documents", docs, "Patient-shared health summary", "The patient's story, in their own words", ".pdf")
		if n := tb.Count(`[data-section=documents] a[download$=".pdf"]`); n != 2 {
			t.Errorf("%d PDF downloads, want the summary and the story", n)
		}
		tb.Clean()
	})

	t.Run("Paste", func(t *testing.T) {
		tb := newTab(t, browser)
		tb.open(host.srv.URL + Path)
		tb.waitState("paste")
		tb.Do(chromedp.SendKeys(chromedp.CSS("#paste-input"), "  "+goodLink+"  "), chromedp.Click(chromedp.CSS("#paste-open")))
		tb.unlock("Dr. Paste", "")
		tb.waitState("record")
		contains(t, "patient", tb.Text("#patient"), "Alex Rivera")
		tb.Clean()
	})

	t.Run("NetworkError", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		dead := "http://" + l.Addr().String() + "/shl/gone"
		l.Close()
		p := share.Payload{URL: dead, Key: share.EncodeKey(share.NewKey()), Exp: future}
		link, err := share.ViewerLink(host.srv.URL+Path, p)
		if err != nil {
			t.Fatal(err)
		}
		tb := openAs(t, browser, link, "Dr. Offline", "", "network")
		contains(t, "network", tb.Text("#status"), "Could not reach the server", "Try again")
		// The failed fetch is logged by the browser as a network error;
		// only CSP reports and exceptions count here.
		tb.Clean()
	})

	t.Run("IPSVector", func(t *testing.T) {
		tb := openVector(t, browser, host, share.Payload{Exp: future, Label: "International Patient Summary"}, share.ContentTypeFHIR, "ips-enc.txt", "Dr. Vector")
		contains(t, "patient", tb.Text("#patient"), "Martha DeLarosa", "1 May 1972", "Female", "574687583")
		contains(t, "allergies", tb.Text(`[data-section=allergies]`), "penicillin", "High criticality", "No known food allergies")
		contains(t, "medications", tb.Text(`[data-section=medications]`), "anastrozole", "Black Cohosh")
		contains(t, "problems", tb.Text(`[data-section=problems]`), "Remission")
		contains(t, "results", tb.Text(`[data-section=results]`), "Hemoglobin A1c", "7.5%", "Methicillin resistant Staphylococcus aureus")
		// The share is named by its label and the bundle's timestamp, never
		// by the title of the document it holds.
		contains(t, "share info", tb.Text("#share-info"), "International Patient Summary", "Made 11 Dec 2017, 14:30 UTC+01:00")
		if got := tb.Text("#record"); strings.Contains(got, "Patient Summary as of") {
			t.Error("the record shows the Composition's title")
		}
		contains(t, "other", tb.Text(`[data-section=other]`), "Organization", "Practitioner")
		if got := tb.Text(`[data-section]`); !strings.HasPrefix(got, "Allergies") {
			t.Errorf("first section starts %q, want the allergies", got[:min(len(got), 40)])
		}
		tb.screenshot("ips")
		tb.Clean()
	})

	t.Run("SHCVector", func(t *testing.T) {
		tb := openVector(t, browser, host, share.Payload{Exp: future, Label: "Vaccination card"}, share.ContentTypeSHC, "spec-example-jwe.txt", "Dr. Card")
		contains(t, "patient", tb.Text("#patient"), "John B. Anyperson", "20 Jan 1951")
		if n := tb.Count(`[data-section=immunizations] tbody tr`); n != 3 {
			t.Errorf("%d immunizations, want 3", n)
		}
		contains(t, "immunizations", tb.Text(`[data-section=immunizations]`), "ABC General Hospital", "Lot 0000007",
			// The card leaves displays out: the CDC's names, from cvx.mjs.
			"SARS-COV-2 (COVID-19) vaccine, mRNA, spike protein, LNP, preservative free, 100 mcg/0.5mL dose or 50 mcg/0.25mL dose (CVX 207)",
			"SARS-COV-2 (COVID-19) vaccine, mRNA, spike protein, LNP, bivalent, preservative free, 50 mcg/0.5 mL or 25 mcg/0.25 mL dose (CVX 229)")
		contains(t, "notice", tb.Text(`[data-notice=shc]`), "spec.smarthealth.cards/examples/issuer", "Signature not verified in viewer")
		tb.screenshot("shc")
		tb.Clean()
	})

	// LocationRefetch: the first manifest's location has been used up
	// (404); the viewer asks for the manifest once more and fetches the
	// fresh location it gives (STU1: a receiver "SHALL be capable of
	// re-fetching the manifest").
	t.Run("LocationRefetch", func(t *testing.T) {
		key := share.NewKey()
		record := share.ManifestFile{ContentType: share.ContentTypeFHIR, Embedded: encrypt(t, key, share.ContentTypeFHIR, testRecord(base), true)}
		link := host.add(t, "refetch", key, share.Payload{Exp: future, Label: "Refetch share"}, &fakeShare{
			manifest: share.Manifest{Files: []share.ManifestFile{record,
				{ContentType: share.ContentTypeFHIR, Location: host.srv.URL + "/files/used-up"}}},
			later: []share.Manifest{{Files: []share.ManifestFile{record,
				{ContentType: share.ContentTypeFHIR, Location: host.addFile("fresh", encrypt(t, key, share.ContentTypeFHIR, testDocuments(base), false))}}}},
		})
		before := host.fileDownloads()
		tb := openAs(t, browser, link, "Dr. Again", "", "record")
		if n := host.requestCount("refetch"); n != 2 {
			t.Errorf("%d manifest requests, want 2 (once more after the 404)", n)
		}
		if n := host.fileDownloads() - before; n != 1 {
			t.Errorf("%d files served, want the fresh location's", n)
		}
		contains(t, "documents", tb.Text(`[data-section=documents]`), "Feeling better since the dose change.")
		contains(t, "allergies", tb.Text(`[data-section=allergies]`), "Penicillin")
		if n := tb.Count(`[data-notice=error]`); n != 0 {
			t.Errorf("%d error notices: %s", n, tb.Text("#share-info"))
		}
		// The 404 of the used-up location is logged by the browser as a
		// failed resource; only CSP reports and exceptions count here.
		tb.Clean()
	})

	// Withdrawn: a file the sender marked no-longer-valid is left out,
	// with a notice saying so.
	t.Run("Withdrawn", func(t *testing.T) {
		key := share.NewKey()
		link := host.add(t, "withdrawn", key, share.Payload{Exp: future}, &fakeShare{
			manifest: share.Manifest{Files: []share.ManifestFile{
				{ContentType: share.ContentTypeFHIR, Status: share.StatusFinalized, FHIRVersion: "4.0.1", Embedded: encrypt(t, key, share.ContentTypeFHIR, testRecord(base), true)},
				{ContentType: share.ContentTypeFHIR, Status: share.StatusNoLongerValid, Embedded: encrypt(t, key, share.ContentTypeFHIR, testDocuments(base), false)},
			}},
		})
		tb := openAs(t, browser, link, "Dr. Withdrawn", "", "record")
		contains(t, "notice", tb.Text(`[data-notice=withdrawn]`), "One shared file was marked no longer valid by the sender; it is not shown.")
		if n := tb.Count(`[data-section=documents]`); n != 0 {
			t.Error("the withdrawn file's documents are shown")
		}
		tb.Clean()
	})

	// OthersLinks: links another implementation may make. A flag letter
	// the viewer does not know is ignored (the P still asks for the
	// passcode), a fractional exp reads as a number, and a later version
	// shows its label and says it is not supported, fetching nothing.
	t.Run("OthersLinks", func(t *testing.T) {
		key := share.NewKey()
		s := &fakeShare{passcode: "4711", attempts: 3,
			manifest: share.Manifest{Files: []share.ManifestFile{{ContentType: share.ContentTypeFHIR, Embedded: encrypt(t, key, share.ContentTypeFHIR, testRecord(base), true)}}}}
		host.add(t, "others", key, share.Payload{}, s)
		host.add(t, "later", key, share.Payload{}, s)
		payload := func(id, flag, exp, v string) string {
			return fmt.Sprintf(`{"url":%q,"key":%q,"flag":%q,"exp":%s,"label":"From elsewhere","v":%s}`, host.srv.URL+"/shl/"+id, share.EncodeKey(key), flag, exp, v)
		}
		exp := fmt.Sprintf("%d.75", future)

		tb := openAs(t, browser, host.viewerLink(payload("others", "LPX", exp, "1")), "Dr. Other", "4711", "record")
		contains(t, "allergies", tb.Text(`[data-section=allergies]`), "Penicillin")
		tb.Clean()

		tb = newTab(t, browser)
		tb.open(host.viewerLink(payload("later", "P", exp, "2")))
		tb.waitState("version")
		contains(t, "version", tb.Text("#status"), "This link needs a newer viewer", "version 2", "Share: From elsewhere")
		if n := host.requestCount("later"); n != 0 {
			t.Errorf("a link of version 2 made %d requests", n)
		}
		tb.Clean()

		tb = newTab(t, browser)
		tb.open(host.viewerLink(payload("others", "L", "0.5", "1")))
		tb.waitState("expired")
		tb.Clean()
	})

	// CSPEnforced shows that the policy is in force and that the probe
	// catches violations, so that the clean() checks above mean something.
	t.Run("CSPEnforced", func(t *testing.T) {
		tb := newTab(t, browser)
		tb.open(host.srv.URL + Path)
		tb.waitState("paste")
		ran := tb.Eval(`(() => { const s = document.createElement('script'); s.textContent = 'window.inlineRan = 1'; document.head.appendChild(s); return typeof window.inlineRan; })()`)
		if ran != "undefined" {
			t.Errorf("an inline script ran: the CSP is not in force")
		}
		tb.WaitFor("the CSP violation report", `(window.__csp || []).length > 0`)
	})
}
