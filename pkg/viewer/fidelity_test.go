package viewer

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/phr-project/phr/internal/browsertest"
	"github.com/phr-project/phr/pkg/share"
)

// readUSCore reads one of the US Core examples shared by the project.
func readUSCore(t *testing.T, name string) obj {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "shared", "testdata", "fhir", "us-core-examples", name))
	if err != nil {
		t.Fatal(err)
	}
	var o obj
	if err := json.Unmarshal(b, &o); err != nil {
		t.Fatal(err)
	}
	delete(o, "text") // narrative is never shown; keep the bundle small
	return o
}

func bpPanel(id, when string, sys, dia float64) obj {
	return obj{"resourceType": "Observation", "id": id, "status": "final",
		"category":          vitalCategory(),
		"code":              concept("", coding(loinc, "85354-9", "Blood pressure panel with all children optional")),
		"subject":           obj{"reference": patRef},
		"effectiveDateTime": when,
		"component": []any{
			obj{"code": concept("", coding(loinc, "8480-6", "Systolic blood pressure")), "valueQuantity": quantity(sys, "mm[Hg]", "mm[Hg]")},
			obj{"code": concept("", coding(loinc, "8462-4", "Diastolic blood pressure")), "valueQuantity": quantity(dia, "mm[Hg]", "mm[Hg]")},
		}}
}

// fidelityRecord holds the patterns of issues 18 and 19 that the viewer
// must show faithfully. US Core examples from ../shared/testdata supply a
// medicationReference (with its Medication), an immunization at a time
// with an offset, and vitals in UCUM units; no shared file shows the
// others as FHIR (a refused vaccine, a refuted condition, "no known
// allergies", zone-less times, float noise, patient-logged doses), so the
// smallest resources that do are written here.
func fidelityRecord(t *testing.T) obj {
	metformin := concept("Metformin 500 mg tablet")
	res := []obj{
		{"resourceType": "Patient", "id": "p1",
			"name":      []any{obj{"use": "official", "family": "Lee", "given": []any{"Jordan"}}},
			"birthDate": "1975-06-01",
			"gender":    "male",
			"identifier": []any{
				obj{"type": concept("MRN"), "system": "urn:example:mrn", "value": "MRN-7731"},
				obj{"type": concept("", coding("http://terminology.hl7.org/CodeSystem/v2-0203", "NI", "National unique individual identifier")), "system": "urn:example:national", "value": "NI 4481 2290"},
			}},
		// An imported document's Composition: never the share's title.
		{"resourceType": "Composition", "id": "doc1", "status": "final", "title": "Patient Summary as of December 11, 2020",
			"type": concept("", coding(loinc, "60591-5", "Patient summary Document")), "date": "2020-12-11"},
		{"resourceType": "AllergyIntolerance", "id": "nka",
			"clinicalStatus": concept("", coding("http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "active", "Active")),
			"code":           concept("", coding(snomed, "716186003", "No known allergy (situation)")),
			"patient":        obj{"reference": patRef},
			"recordedDate":   "2026-05-02"},
		{"resourceType": "AllergyIntolerance", "id": "pen",
			"verificationStatus": concept("", coding("http://terminology.hl7.org/CodeSystem/allergyintolerance-verification", "refuted", "Refuted")),
			"code":               concept("Penicillin"),
			"patient":            obj{"reference": patRef},
			"recordedDate":       "2025-02-14"},
		{"resourceType": "Condition", "id": "dm",
			"clinicalStatus": concept("", coding("http://terminology.hl7.org/CodeSystem/condition-clinical", "active", "Active")),
			"code":           concept("", coding(snomed, "44054006", "Type 2 diabetes mellitus")),
			"subject":        obj{"reference": patRef},
			"onsetDateTime":  "2026-06-01"},
		{"resourceType": "Condition", "id": "asthma",
			"verificationStatus": concept("", coding("http://terminology.hl7.org/CodeSystem/condition-ver-status", "refuted", "Refuted")),
			"code":               concept("Asthma"),
			"subject":            obj{"reference": patRef},
			"recordedDate":       "2024-03-10"},
		{"resourceType": "Condition", "id": "mistake",
			"verificationStatus": concept("", coding("http://terminology.hl7.org/CodeSystem/condition-ver-status", "entered-in-error", "Entered in error")),
			"code":               concept("Hypothyroidism"),
			"subject":            obj{"reference": patRef}},
		{"resourceType": "Immunization", "id": "flu2013", "status": "completed",
			"vaccineCode":        concept("Influenza vaccine"),
			"patient":            obj{"reference": patRef},
			"occurrenceDateTime": "2013-08-15T10:30:00"},
		readUSCore(t, "imm-1.json"),
		{"resourceType": "Immunization", "id": "covid-refused", "status": "not-done",
			"vaccineCode":        concept("COVID-19 vaccine"),
			"statusReason":       concept("", coding("http://terminology.hl7.org/CodeSystem/v3-ActReason", "PATOBJ", "patient objection")),
			"patient":            obj{"reference": patRef},
			"occurrenceDateTime": "2026-06-02"},
		{"resourceType": "MedicationStatement", "id": "met", "status": "active",
			"medicationCodeableConcept": metformin,
			"subject":                   obj{"reference": patRef},
			"effectivePeriod":           obj{"start": "2026-06-01"},
			"dosage":                    []any{obj{"text": "500 mg twice daily", "timing": obj{"code": obj{"text": "twice daily"}}}}},
		readUSCore(t, "medicationrequest-referenced-oral-axid.json"),
		readUSCore(t, "uscore-med2.json"),
		{"resourceType": "MedicationStatement", "id": "amox", "status": "completed",
			"medicationCodeableConcept": concept("Amoxicillin 500 mg capsule"),
			"subject":                   obj{"reference": patRef},
			"effectivePeriod":           obj{"start": "2026-05-01", "end": "2026-05-10"}},
		{"resourceType": "MedicationStatement", "id": "simva", "status": "not-taken",
			"medicationCodeableConcept": concept("Simvastatin 20 mg tablet"),
			"statusReason":              []any{concept("Muscle pain")},
			"subject":                   obj{"reference": patRef}},
		bpPanel("bp2013", "2013-03-03T10:00:00", 150, 95),
	}
	// Nine readings in the week before the share, the last with float
	// noise from a unit conversion.
	bp := [][2]float64{{128, 84}, {131, 86}, {126, 82}, {129, 83}, {133, 88}, {127, 81}, {125, 80}, {124, 79}, {120.00000000000001, 81.69998963820044}}
	for i, v := range bp {
		day := 8 + i*6/8
		hour := 8 + (i%2)*11
		res = append(res, bpPanel("bp"+strconv.Itoa(i), fmt.Sprintf("2026-06-%02dT%02d:00:00-05:00", day, hour), v[0], v[1]))
	}
	for i, v := range []float64{181.4, 180.2, 179.6} {
		res = append(res, obj{"resourceType": "Observation", "id": "wt" + strconv.Itoa(i), "status": "final", "category": vitalCategory(),
			"code": concept("weight", coding(loinc, "29463-7", "Body weight")), "subject": obj{"reference": patRef},
			"effectiveDateTime": fmt.Sprintf("2026-06-%02d", 2+5*i), "valueQuantity": quantity(v, "[lb_av]", "[lb_av]")})
	}
	for i, v := range []float64{36.8, 37.05000000000001} {
		res = append(res, obj{"resourceType": "Observation", "id": "temp" + strconv.Itoa(i), "status": "final", "category": vitalCategory(),
			"code": concept("temperature", coding(loinc, "8310-5", "Body temperature")), "subject": obj{"reference": patRef},
			"effectiveDateTime": fmt.Sprintf("2026-06-%02dT07:30:00", 12+i), "valueQuantity": quantity(v, "Cel", "Cel")})
	}
	// 28 metformin doses over two weeks, as phr's CLI logs them.
	for d := 1; d <= 14; d++ {
		for _, hh := range []int{8, 20} {
			res = append(res, obj{"resourceType": "MedicationAdministration", "id": fmt.Sprintf("dose-%d-%d", d, hh), "status": "completed",
				"medicationCodeableConcept": metformin,
				"subject":                   obj{"reference": patRef},
				"effectiveDateTime":         fmt.Sprintf("2026-06-%02dT%02d:00:00-05:00", d, hh),
				"dosage":                    obj{"dose": quantity(500, "mg", "mg")}})
		}
	}
	b := bundle(res...)
	b["timestamp"] = "2026-06-15T09:30:00+02:00"
	return b
}

// fidelityShare registers the fidelity record as a share and returns its
// link and the bundle's bytes as shared.
func fidelityShare(t *testing.T, host *fakeHost) (link string, plain []byte) {
	t.Helper()
	plain, err := json.Marshal(fidelityRecord(t))
	if err != nil {
		t.Fatal(err)
	}
	key := share.NewKey()
	jwe, err := share.EncryptFile(key, share.ContentTypeFHIR, plain, true)
	if err != nil {
		t.Fatal(err)
	}
	link = host.add(t, "fidelity", key, share.Payload{Exp: time.Now().Add(time.Hour).Unix(), Label: "Diabetes review"}, &fakeShare{
		manifest: share.Manifest{Files: []share.ManifestFile{{ContentType: share.ContentTypeFHIR, Embedded: jwe}}},
	})
	return link, plain
}

// brokenWords lists the words inside elements matching sel that the
// layout broke across lines ("Complete/d").
const brokenWordsJS = `(() => {
  const out = [];
  for (const el of document.querySelectorAll(%q)) {
    if (!el.getClientRects().length) continue;
    const walk = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    for (let n = walk.nextNode(); n; n = walk.nextNode()) {
      for (const m of n.data.matchAll(/\S+/g)) {
        const r = document.createRange();
        r.setStart(n, m.index);
        r.setEnd(n, m.index + m[0].length);
        const tops = new Set([...r.getClientRects()].filter((x) => x.width > 0).map((x) => Math.round(x.top)));
        if (tops.size > 1) out.push(m[0]);
      }
    }
  }
  return out;
})()`

func (tb *tab) brokenWords(sel string) []string {
	tb.T.Helper()
	v, err := chromedp.Run(tb.Ctx, chromedp.Evaluate[[]string](fmt.Sprintf(brokenWordsJS, sel)))
	if err != nil {
		tb.T.Fatal(err)
	}
	return v
}

// shot saves a screenshot of one element (see save).
func (tb *tab) shot(name, sel string) {
	tb.T.Helper()
	tb.save(name, tb.Screenshot(chromedp.Screenshot(chromedp.CSS(sel))))
}

// viewportShot saves what the screen shows (see save).
func (tb *tab) viewportShot(name string) {
	tb.T.Helper()
	tb.Do(chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))
	tb.save(name, tb.Screenshot(chromedp.CaptureScreenshot()))
}

// save writes a PNG to the test's temporary directory and, when
// VIEWER_SCREENSHOTS names a directory, there as viewer-NAME.png.
func (tb *tab) save(name string, png []byte) {
	tb.T.Helper()
	browsertest.Save(tb.T, "VIEWER_SCREENSHOTS", "viewer", name, png)
}

func (tb *tab) timezone(tz string) {
	tb.T.Helper()
	tb.CDP(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: tz})
		return err
	})
}

func (tb *tab) media(m string) {
	tb.T.Helper()
	tb.Emulate(m, nil)
}

func notContains(t *testing.T, what, got string, unwanted ...string) {
	t.Helper()
	for _, u := range unwanted {
		if strings.Contains(got, u) {
			t.Errorf("%s shows %q", what, u)
		}
	}
}

// sizes are the widths the record is checked at: desktop and phone.
var sizes = []struct {
	name          string
	width, height int64
	mobile        bool
}{
	{"desktop", 1280, 900, false},
	{"phone", 390, 844, true},
}

// TestViewerFidelity opens a share holding the patterns of issues 18 and
// 19 at desktop and phone sizes, in print, and in three time zones.
func TestViewerFidelity(t *testing.T) {
	browserCtx := startBrowser(t)
	host := newFakeHost(t)
	link, plain := fidelityShare(t, host)

	open := func(t *testing.T, tb *tab) {
		t.Helper()
		tb.open(link)
		tb.unlock("Dr. Ada Test, City Clinic", "")
		tb.waitState("record")
	}

	for _, size := range sizes {
		t.Run(size.name, func(t *testing.T) {
			tb := newTab(t, browserCtx)
			if size.mobile {
				tb.Do(chromedp.EmulateViewport(size.width, size.height, chromedp.EmulateMobile))
			} else {
				tb.Do(chromedp.EmulateViewport(size.width, size.height))
			}
			downloads := t.TempDir()
			tb.Do(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
				_, err := cdp.Call(ctx, tg, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: downloads})
				return err
			}))
			open(t, tb)
			checkFidelity(t, tb)
			if w := tb.Eval(`document.documentElement.scrollWidth`).(float64); w > float64(size.width) {
				t.Errorf("scrollWidth %v > %d: the page scrolls sideways", w, size.width)
			}
			if b := tb.brokenWords(`td.status, th, .badge, .legend`); len(b) != 0 {
				t.Errorf("words broken across lines: %q", b)
			}
			if size.mobile {
				tb.viewportShot(size.name) // the first screen: who the patient is
			} else {
				tb.screenshot(size.name)
				tb.shot("trends", `[data-section=trends]`)
				tb.shot("doses", `[data-section=patient-reported]`)
				tb.shot("negations", `[data-section=allergies]`)
			}
			checkDoseRows(t, tb)
			checkWiden(t, tb)
			checkDownload(t, tb, host, downloads, plain)
			tb.Clean()
		})
	}

	t.Run("Print", func(t *testing.T) {
		tb := newTab(t, browserCtx)
		// A4 less the page margins is about 700 CSS pixels wide.
		tb.Do(chromedp.EmulateViewport(700, 1000))
		open(t, tb)
		tb.media("print")
		tb.WaitFor("print styles", `getComputedStyle(document.getElementById('print')).display === 'none'`)
		for _, sel := range []string{`.toolbar`, `.windows`, `button.download-fhir`, `.topbar`} {
			if n := tb.Eval(fmt.Sprintf(`[...document.querySelectorAll(%q)].filter((e) => e.getClientRects().length).length`, sel)).(float64); n != 0 {
				t.Errorf("%s is printed", sel)
			}
		}
		if b := tb.brokenWords(`td.status, th, .badge, .legend`); len(b) != 0 {
			t.Errorf("words broken across lines in print: %q", b)
		}
		if w := tb.Eval(`document.documentElement.scrollWidth`).(float64); w > 700 {
			wide := tb.Eval(`[...document.querySelectorAll('#record *')].filter(e => e.getBoundingClientRect().right > 701).slice(0, 8).map(e => e.tagName + '.' + (typeof e.className === 'string' ? e.className : '') + ' ' + Math.round(e.getBoundingClientRect().right)).join(', ')`)
			t.Errorf("print: scrollWidth %v > 700 (wide: %v)", w, wide)
		}
		contains(t, "print", tb.Text("#record"), "Jordan Lee", "No known allergies", "Not given", "Not taken", "Taken 28 of 28 expected")
		tb.screenshot("print")
		tb.Clean()
	})

	for _, tz := range []string{"America/Los_Angeles", "Pacific/Kiritimati", "UTC"} {
		t.Run("Zone/"+tz, func(t *testing.T) {
			tb := newTab(t, browserCtx)
			tb.timezone(tz)
			open(t, tb)
			if got := tb.Eval(`Intl.DateTimeFormat().resolvedOptions().timeZone`); got != tz {
				t.Fatalf("the page runs in zone %v, want %s", got, tz)
			}
			contains(t, "problems", tb.Text(`[data-section=problems]`), "1 Jun 2026")
			contains(t, "medications", tb.Text(`[data-section=medications]`), "1 Jun 2026", "10 May 2026")
			contains(t, "immunizations", tb.Text(`[data-section=immunizations]`), "15 Aug 2013, 10:30", "19 Nov 2020, 12:46:57 UTC-08:00", "2 Jun 2026")
			contains(t, "made", tb.Text("#share-made"), "15 Jun 2026, 09:30 UTC+02:00")
			contains(t, "patient", tb.Text("#patient"), "1 Jun 1975")
			contains(t, "doses", tb.Text(`[data-section=patient-reported]`), "14 Jun 2026, 20:00 UTC-05:00", "1–14 Jun 2026")
			contains(t, "bp chart", tb.Text(`figure[data-series=bp]`), "8–14 Jun 2026")
			notContains(t, "record", tb.Text("#record"), "31 May 2026", "31 May 1975", "9 May 2026", "14 Aug 2013", "15 Jun 2026, 08:30")
			tb.Clean()
		})
	}
}

// checkDoseRows opens the disclosure behind the dose summary.
func checkDoseRows(t *testing.T, tb *tab) {
	t.Helper()
	visible := `[...document.querySelectorAll('[data-section=patient-reported] table.doses tbody tr')].filter((e) => e.checkVisibility()).length`
	if n := tb.Eval(visible).(float64); n != 0 {
		t.Errorf("%v dose rows visible before the disclosure is opened", n)
	}
	tb.Do(chromedp.Click(chromedp.CSS(`li.med-doses summary`)))
	tb.WaitFor("the 28 dose rows", visible+` === 28`)
}

// checkWiden widens the blood pressure chart from its recent default to
// the whole history.
func checkWiden(t *testing.T, tb *tab) {
	t.Helper()
	fig := `figure[data-series=bp]`
	if n := tb.Count(fig + ` circle.pt-0`); n != 9 {
		t.Errorf("default window: %d systolic readings, want this week's 9", n)
	}
	contains(t, "bp window", tb.Text(fig+` .window-text`), "9 of 10 readings", "8–14 Jun 2026", "last 3 months")
	tb.Do(chromedp.Click(chromedp.CSS(fig + ` button[data-window=all]`)))
	tb.WaitFor("the whole history", `document.querySelector('figure[data-series=bp]').dataset.window === 'all'`)
	if n := tb.Count(fig + ` circle.pt-0`); n != 10 {
		t.Errorf("all: %d systolic readings, want 10", n)
	}
	contains(t, "bp window", tb.Text(fig+` .window-text`), "All 10 readings", "3 Mar 2013 – 14 Jun 2026")
	ticks := tb.Eval(`[...document.querySelectorAll('figure[data-series=bp] text.xlabel')].map((e) => e.textContent).join('|')`).(string)
	if !strings.Contains(ticks, "2015") || !strings.Contains(ticks, "2025") {
		t.Errorf("x axis of the whole history: %q", ticks)
	}
	if got := tb.Eval(`document.querySelector('figure[data-series=bp] button[aria-pressed=true]').dataset.window`); got != "all" {
		t.Errorf("pressed window button: %v", got)
	}
}

// checkDownload saves the shared bundle with "Download FHIR": the file is
// the decrypted bundle, byte for byte, and nothing is requested.
func checkDownload(t *testing.T, tb *tab, host *fakeHost, dir string, plain []byte) {
	t.Helper()
	before := host.requestCount("fidelity")
	tb.Do(chromedp.Click(chromedp.CSS(`button.download-fhir`)))
	deadline := time.Now().Add(15 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(dir, "shared-record.json"))
		if err == nil && len(b) == len(plain) {
			if string(b) != string(plain) {
				t.Error("the downloaded FHIR differs from the shared bundle")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no download of shared-record.json (%v)", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := host.requestCount("fidelity"); n != before {
		t.Errorf("downloading made %d requests to the host", n-before)
	}
}

// checkFidelity checks what issues 18 and 19 ask the record page to show.
func checkFidelity(t *testing.T, tb *tab) {
	t.Helper()
	// The key leaves the address bar and the history entry at once.
	if href := tb.Eval(`location.href`).(string); strings.Contains(href, "shlink") || strings.Contains(href, "#") {
		t.Errorf("address after load: %s", href)
	}
	// Header first: who the patient is, then what the share is.
	first := tb.Eval(`document.querySelector('#record').firstElementChild.firstElementChild.id`)
	if first != "patient" {
		t.Errorf("the record starts with %v, want the patient", first)
	}
	patient := tb.Text("#patient")
	contains(t, "patient", patient, "Jordan Lee", "Born", "1 Jun 1975", "Sex", "Male", "MRN", "MRN-7731", "National unique individual identifier", "NI 4481 2290")
	contains(t, "share", tb.Text("#share-info"), "Diabetes review", "Made 15 Jun 2026, 09:30 UTC+02:00", "Dr. Ada Test, City Clinic")
	if title := tb.Eval(`document.title`).(string); title != "Diabetes review (15 Jun 2026) — shared health record" {
		t.Errorf("document title %q", title)
	}
	record := tb.Text("#record")
	notContains(t, "record", record, "Patient Summary as of", "Hypothyroidism", "mm[Hg]", "[lb_av]", "Cel", "81.69998963820044", "120.00000000000001", "MedicationRequest", "MedicationStatement")

	allergies := tb.Text(`[data-section=allergies]`)
	contains(t, "allergies", allergies, "No known allergies", "Ruled out", "Penicillin")
	if n := tb.Count(`[data-section=allergies] li.allergy`); n != 0 {
		t.Errorf("%d allergies listed; the share has none (one statement, one ruled out)", n)
	}
	if n := tb.Count(`[data-section=allergies] li.statement[data-none="716186003"]`); n != 1 {
		t.Errorf("%d no-known-allergies statements, want 1", n)
	}

	contains(t, "problems", tb.Text(`[data-section=problems]`), "Type 2 diabetes mellitus", "1 Jun 2026", "Ruled out", "Asthma")
	if got := tb.Text(`[data-section=problems] table.problems`); strings.Contains(got, "Asthma") {
		t.Error("a refuted condition is listed among the problems")
	}
	contains(t, "left out", tb.Text("#left-out"), "1 record marked")

	given := tb.Text(`[data-section=immunizations] table.immunizations:not(.not-given)`)
	contains(t, "vaccines given", given, "Influenza vaccine", "15 Aug 2013, 10:30", "Influenza, high-dose, quadrivalent, PF", "19 Nov 2020, 12:46:57 UTC-08:00")
	notContains(t, "vaccines given", given, "COVID")
	contains(t, "vaccines not given", tb.Text(`[data-section=immunizations] table.not-given`), "COVID-19 vaccine", "Not given", "patient objection", "2 Jun 2026")
	if got := tb.Text(`[data-section=immunizations] h2 .count`); got != "2" {
		t.Errorf("immunizations count %q, want the 2 given", got)
	}

	active := tb.Text(`[data-section=medications] table.meds:not(.other)`)
	contains(t, "active medications", active, "Metformin 500 mg tablet", "500 mg twice daily", "Nizatidine 15 MG/ML Oral Solution [Axid]", "10 mL bid")
	notContains(t, "active medications", active, "Simvastatin", "Amoxicillin")
	other := tb.Eval(`[...document.querySelectorAll('[data-section=medications] table.other tbody tr')].map((tr) => [...tr.cells].map((c) => c.textContent).join(' | ')).join('\n')`).(string)
	contains(t, "other medications", other, "Amoxicillin 500 mg capsule | Completed | — | 1 May 2026 | 10 May 2026", "Simvastatin 20 mg tablet | Not takenMuscle pain")

	contains(t, "vitals", tb.Text(`[data-section=vitals]`), "Blood pressure", "120/82 mmHg", "Body weight", "179.6 lb", "Body temperature", "37.1 °C")
	bp := tb.Text(`figure[data-series=bp]`)
	contains(t, "bp chart", bp, "Blood pressure (mmHg)", "Latest 120/82 mmHg", "9 of 10 readings", "Typical adult range")
	if n := tb.Count(`figure[data-series=bp] rect.band`); n != 2 {
		t.Errorf("%d normal-range bands on the blood pressure chart, want 2", n)
	}
	if n := tb.Count(`figure[data-series=bp] text.xlabel`); n < 3 {
		t.Errorf("%d dates on the blood pressure chart's axis, want 3 or more", n)
	}
	contains(t, "weight chart", tb.Text(`figure[data-series=weight]`), "Body weight (lb)")

	doses := tb.Text(`[data-section=patient-reported] li.med-doses`)
	contains(t, "doses", doses, "Metformin 500 mg tablet", "Taken 28 of 28 expected", "twice daily", "Last dose", "14 Jun 2026, 20:00 UTC-05:00", "Show all 28 doses")
	if n := tb.Count(`[data-section=patient-reported] table.doses tbody tr`); n != 28 {
		t.Errorf("%d dose rows behind the disclosure, want 28", n)
	}
}
