package fhirdoc

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/phr-project/phr/pkg/record"
	"github.com/phr-project/phr/pkg/share"
)

var ktcNow = time.Date(2026, 1, 30, 12, 0, 0, 0, time.UTC)

// ktcPatient and ktcCore are the profile's synthetic patient (Jessica
// Argonaut) and the four resource types its receivers SHALL persist, as
// in the profile's published test vectors.
func ktcPatient(t *testing.T) record.Record {
	return imported(t, `{"resourceType":"Patient","id":"p1","meta":{"profile":["http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"]},"name":[{"given":["Jessica"],"family":"Argonaut"}],"birthDate":"1985-03-15","gender":"female"}`)
}

func ktcCore(t *testing.T) []record.Record {
	return []record.Record{
		imported(t, `{"resourceType":"Condition","clinicalStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-clinical","code":"active"}]},"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-category","code":"problem-list-item"}]}],"code":{"coding":[{"system":"http://snomed.info/sct","code":"38341003","display":"Hypertensive disorder"}],"text":"Hypertension"},"subject":{"reference":"Patient/p1"},"onsetDateTime":"2022-04-01"}`),
		imported(t, `{"resourceType":"MedicationRequest","status":"active","intent":"order","medicationCodeableConcept":{"coding":[{"system":"http://www.nlm.nih.gov/research/umls/rxnorm","code":"979480","display":"lisinopril 10 MG Oral Tablet"}],"text":"Lisinopril 10 mg"},"subject":{"reference":"Patient/p1"},"authoredOn":"2025-11-02","dosageInstruction":[{"text":"1 tablet daily"}]}`),
		imported(t, `{"resourceType":"AllergyIntolerance","meta":{"profile":["http://hl7.org/fhir/us/core/StructureDefinition/us-core-allergyintolerance"],"lastUpdated":"2025-01-01T00:00:00Z"},"clinicalStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical","code":"active"}]},"code":{"coding":[{"system":"http://www.nlm.nih.gov/research/umls/rxnorm","code":"7980","display":"penicillin G"}],"text":"Penicillin"},"patient":{"reference":"Patient/p1"},"reaction":[{"manifestation":[{"text":"Hives"}]}]}`),
		imported(t, `{"resourceType":"Immunization","status":"completed","vaccineCode":{"coding":[{"system":"http://hl7.org/fhir/sid/cvx","code":"208","display":"COVID-19 vaccine, mRNA, BNT162b2"}],"text":"COVID-19 vaccine"},"patient":{"reference":"Patient/p1"},"occurrenceDateTime":"2025-10-12"}`),
	}
}

func TestBuildKTC(t *testing.T) {
	patient := ktcPatient(t)
	core := ktcCore(t)
	tests := []struct {
		name    string
		patient record.Record
		recs    []record.Record
		story   string
		types   []string // the resourceTypes of the entries, in order
		docs    []string // the LOINC types of the documents
		err     error
	}{
		{name: "persistence core", patient: patient, recs: core,
			types: []string{"Patient", "Condition", "MedicationRequest", "AllergyIntolerance", "Immunization", "DocumentReference"},
			docs:  []string{LOINCPatientSummary}},
		{name: "both PDFs", patient: patient, recs: core[:1], story: "I walk every day.\nMy knees hurt on stairs.",
			types: []string{"Patient", "Condition", "DocumentReference", "DocumentReference"},
			docs:  []string{LOINCPatientSummary, LOINCPatientNote}},
		{name: "story only", patient: patient, story: "Please call my daughter first.",
			types: []string{"Patient", "DocumentReference", "DocumentReference"},
			docs:  []string{LOINCPatientSummary, LOINCPatientNote}},
		{name: "the patient among the records", recs: append([]record.Record{patient}, core[3]),
			types: []string{"Patient", "Immunization", "DocumentReference"}, docs: []string{LOINCPatientSummary}},
		{name: "no patient", recs: core, err: ErrKTCNoPatient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := BuildKTC(tt.patient, tt.recs, KTCOptions{Now: ktcNow, Story: tt.story})
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := CheckKTCBundle(data); err != nil {
				t.Fatalf("our own bundle fails the profile: %v", err)
			}
			var b struct {
				Type, Timestamp string
				Entry           []struct {
					FullURL  string         `json:"fullUrl"`
					Resource map[string]any `json:"resource"`
				}
			}
			if err := json.Unmarshal(data, &b); err != nil {
				t.Fatal(err)
			}
			if b.Type != "collection" || b.Timestamp != "2026-01-30T12:00:00Z" {
				t.Errorf("type %q timestamp %q", b.Type, b.Timestamp)
			}
			var types, docs []string
			for _, e := range b.Entry {
				r := record.Resource(e.Resource)
				types = append(types, r.Type())
				if r.Get("meta.profile") != nil {
					t.Errorf("%s keeps meta.profile", r.Type())
				}
				if r.Type() == "AllergyIntolerance" && r.Str("meta.lastUpdated") == "" {
					t.Error("meta.lastUpdated was dropped with meta.profile")
				}
				if r.Type() != "DocumentReference" {
					continue
				}
				docs = append(docs, r.Codings("type")[0].Code)
				if !r.HasCoding("meta.security", SecuritySystem, SecurityPATAST) && r.Str("meta.security.code") != SecurityPATAST {
					t.Error("no PATAST label")
				}
				pdf, _ := base64.StdEncoding.DecodeString(r.Str("content.0.attachment.data"))
				if !bytes.HasPrefix(pdf, []byte("%PDF-")) {
					t.Error("no PDF")
				}
				if r.Str("date") != "2026-01-30T12:00:00Z" || r.Str("author.0.reference") != b.Entry[0].FullURL {
					t.Errorf("date %q author %q", r.Str("date"), r.Str("author.0.reference"))
				}
			}
			if strings.Join(types, " ") != strings.Join(tt.types, " ") || strings.Join(docs, " ") != strings.Join(tt.docs, " ") {
				t.Errorf("entries %v docs %v, want %v %v", types, docs, tt.types, tt.docs)
			}
			// Every reference resolves inside the bundle.
			urls := map[string]bool{}
			for _, e := range b.Entry {
				urls[e.FullURL] = true
			}
			for _, e := range b.Entry {
				walkReferences(e.Resource, func(ref map[string]any) {
					if s, _ := ref["reference"].(string); !urls[s] {
						t.Errorf("%s: reference %q leaves the bundle", e.Resource["resourceType"], s)
					}
				})
			}
		})
	}
}

// ktcVectorKey derives a vector's key as the profile's generator does.
func ktcVectorKey(id string) []byte {
	k := sha256.Sum256([]byte("ktc-vector-key:" + id))
	return k[:]
}

// TestKTCVectors runs the categories of the profile's published test
// vectors (tiers decode, retrieve, decrypt and bundle; baseline,
// robustness and negative) through phr's receiving pipeline, against
// files served from 127.0.0.1. The vectors are made here, the way the
// profile's generator makes its own: the same synthetic patient, keys
// derived from the vector's id, the same bundles; phr's own bundle
// (BuildKTC) is among them. Each either resolves to a bundle of the
// expected number of entries, or is refused at the expected stage:
// decode, payload, retrieve, decrypt or bundle.
func TestKTCVectors(t *testing.T) {
	patient := ktcPatient(t)
	core := ktcCore(t)
	ours, err := BuildKTC(patient, core, KTCOptions{Now: ktcNow})
	if err != nil {
		t.Fatal(err)
	}
	both, err := BuildKTC(patient, core, KTCOptions{Now: ktcNow, Story: "I am allergic to penicillin since childhood."})
	if err != nil {
		t.Fatal(err)
	}
	discrete, err := BuildBundle(patient, core) // no timestamp: add one, as the profile's bundles have
	if err != nil {
		t.Fatal(err)
	}
	discrete = bytes.Replace(discrete, []byte(`"type":"collection"`), []byte(`"type":"collection","timestamp":"2026-01-30T12:00:00Z"`), 1)
	mutate := func(data []byte, f func(b map[string]any)) []byte {
		var b map[string]any
		if err := json.Unmarshal(data, &b); err != nil {
			t.Fatal(err)
		}
		f(b)
		out, _ := json.Marshal(b)
		return out
	}
	entries := func(b map[string]any) []any { return b["entry"].([]any) }
	bundles := map[string][]byte{
		"persistence-core": ours,
		"both-pdfs":        both,
		"discrete-only":    discrete,
		"minimal": mutate(both, func(b map[string]any) { // Patient + Patient Story PDF
			es := entries(b)
			b["entry"] = []any{es[0], es[len(es)-1]}
		}),
		"carin-dic": mutate(ours, func(b map[string]any) {
			es := entries(b)
			cov := map[string]any{"fullUrl": "urn:uuid:22222222-0000-4000-8000-000000000001", "resource": map[string]any{
				"resourceType": "Coverage", "status": "active", "subscriberId": "KTC123456789",
				"beneficiary": map[string]any{"reference": es[0].(map[string]any)["fullUrl"]}, "payor": []any{map[string]any{"display": "Argonaut Health Plan"}},
			}}
			b["entry"] = []any{es[0], cov, es[len(es)-1]}
		}),
		"attestation-broken": mutate(ours, func(b map[string]any) { // must not block
			b["meta"] = map[string]any{"extension": []any{map[string]any{"url": "https://cms.gov/fhir/StructureDefinition/app-attestation", "valueString": "eyJhbGciOiJFUzI1NiJ9.e30.AAAA"}}}
		}),
		"bad-type-document": mutate(ours, func(b map[string]any) { b["type"] = "document" }),
		"bad-single-entry":  mutate(ours, func(b map[string]any) { b["entry"] = entries(b)[:1] }),
		"bad-no-timestamp":  mutate(ours, func(b map[string]any) { delete(b, "timestamp") }),
		"bad-two-patients": mutate(ours, func(b map[string]any) {
			es := entries(b)
			b["entry"] = append([]any{map[string]any{"fullUrl": "urn:uuid:0", "resource": map[string]any{"resourceType": "Patient"}}}, es...)
		}),
		"bad-document-type": mutate(ours, func(b map[string]any) {
			es := entries(b)
			doc := es[len(es)-1].(map[string]any)["resource"].(map[string]any)
			doc["content"].([]any)[0].(map[string]any)["attachment"].(map[string]any)["contentType"] = "text/html"
		}),
	}
	count := func(name string) int {
		var b struct{ Entry []any }
		json.Unmarshal(bundles[name], &b)
		return len(b.Entry)
	}

	// The host: static files, as the profile's vectors are served.
	files := map[string]string{}
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if r.URL.Query().Get(share.RecipientParam) == "" {
			http.Error(w, "recipient required", http.StatusBadRequest)
			return
		}
		jwe, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", share.ContentTypeJOSE)
		w.Write([]byte(jwe))
	}))
	t.Cleanup(srv.Close)
	exp := ktcNow.Add(365 * 24 * time.Hour).Unix()
	expired := int64(1706745600) // 2024-02-01, the profile's pinned past time

	type vector struct {
		id, tier, level string
		bundle          string // the served bundle
		zip, tamper     bool
		flag            string
		exp             int64
		label           string
		key             []byte
		form            string // "bare", "prefixed", or "raw" (input below)
		raw             string
		gone            bool
		stage           string // "" resolves; else where it is refused
	}
	link := func(v vector) string {
		key := v.key
		if key == nil {
			key = ktcVectorKey(v.id)
		}
		if v.form == "raw" {
			return v.raw
		}
		path := "/vectors/files/" + v.id + ".jwe"
		if !v.gone {
			jwe, err := share.EncryptFile(key, share.ContentTypeFHIR, bundles[v.bundle], v.zip)
			if err != nil {
				t.Fatal(err)
			}
			if v.tamper {
				parts := strings.Split(jwe, ".")
				c := []byte(parts[3])
				if c[0] == 'A' {
					c[0] = 'B'
				} else {
					c[0] = 'A'
				}
				parts[3] = string(c)
				jwe = strings.Join(parts, ".")
			}
			files[path] = jwe
		}
		flag := v.flag
		if flag == "" {
			flag = share.FlagDirect
		}
		p := share.Payload{URL: srv.URL + path, Key: share.EncodeKey(key), Exp: v.exp, Flag: flag, Label: v.label}
		if p.Exp == 0 {
			p.Exp = exp
		}
		s, err := share.Encode(p)
		if err != nil {
			t.Fatal(err)
		}
		if v.form == "prefixed" {
			return "https://shlink-viewer.example.org/#" + s
		}
		return s
	}
	// A label whose base64url encoding needs '-' and '_' (the atob trap).
	var b64Label string
	for i := 0; i < 4096 && b64Label == ""; i++ {
		l := fmt.Sprintf("\U0001F9EA%s\U0001F517\U0001F4E6 sonde num\u00e9ro %d", strings.Repeat("x", i%4), i)
		js, _ := json.Marshal(share.Payload{URL: srv.URL + "/vectors/files/ktc-d3-b64url.jwe", Key: share.EncodeKey(ktcVectorKey("ktc-d3-b64url")), Exp: exp, Flag: "U", Label: l})
		if enc := base64.RawURLEncoding.EncodeToString(js); strings.Contains(enc, "-") && strings.Contains(enc, "_") {
			b64Label = l
		}
	}
	// A key whose base64url form holds '-' and '_'.
	var urlSafeKey []byte
	for i := 0; i < 4096 && urlSafeKey == nil; i++ {
		if k := ktcVectorKey(fmt.Sprintf("ktc-e3-key-urlsafe~%d", i)); strings.Contains(share.EncodeKey(k), "-") && strings.Contains(share.EncodeKey(k), "_") {
			urlSafeKey = k
		}
	}
	d1 := share.Payload{URL: srv.URL + "/vectors/files/ktc-d1-baseline.jwe", Key: share.EncodeKey(ktcVectorKey("ktc-d1-baseline"))}
	raw := func(p share.Payload) string {
		js, _ := json.Marshal(p)
		return share.LinkPrefix + base64.RawURLEncoding.EncodeToString(js)
	}
	vectors := []vector{
		// Tier 1: decode.
		{id: "ktc-d1-baseline", tier: "decode", level: "baseline", bundle: "minimal", label: "Jessica Argonaut's health summary"},
		{id: "ktc-d2-prefixed", tier: "decode", level: "baseline", bundle: "minimal", form: "prefixed", label: "Prefixed form — same payload either way"},
		{id: "ktc-d3-b64url", tier: "decode", level: "baseline", bundle: "minimal", label: b64Label},
		{id: "ktc-d4-utf8-label", tier: "decode", level: "baseline", bundle: "minimal", label: "Jessica Argonaut — résumé de santé"},
		{id: "ktc-d5-no-label", tier: "decode", level: "baseline", bundle: "minimal"},
		{id: "ktc-d6-no-exp", tier: "decode", level: "negative", form: "raw", raw: raw(share.Payload{URL: d1.URL, Key: d1.Key, Flag: "U"}), stage: "payload"},
		{id: "ktc-d7-flag-p", tier: "decode", level: "negative", form: "raw", raw: raw(share.Payload{URL: d1.URL, Key: d1.Key, Flag: "P", Exp: exp}), stage: "payload"},
		{id: "ktc-d8-flag-empty", tier: "decode", level: "negative", form: "raw", raw: raw(share.Payload{URL: d1.URL, Key: d1.Key, Exp: exp}), stage: "payload"},
		{id: "ktc-d9-truncated", tier: "decode", level: "negative", form: "raw", raw: "shlink:/eyJ1cmwiOiJodHRwczovL2V4YW1wbGUuY29t", stage: "decode"},
		{id: "ktc-d10-long-term", tier: "decode", level: "negative", bundle: "minimal", flag: "LU", stage: "payload"},
		// Tier 2: retrieve.
		{id: "ktc-r1-gone", tier: "retrieve", level: "robustness", gone: true, stage: "retrieve"},
		{id: "ktc-r2-expired", tier: "retrieve", level: "robustness", bundle: "minimal", exp: expired, label: "Expired in 2024", stage: "payload"},
		// Tier 3: decrypt.
		{id: "ktc-e0-plain", tier: "decrypt", level: "baseline", bundle: "persistence-core"},
		{id: "ktc-e1-zip-def", tier: "decrypt", level: "robustness", bundle: "persistence-core", zip: true},
		{id: "ktc-e2-tampered", tier: "decrypt", level: "negative", bundle: "minimal", tamper: true, stage: "decrypt"},
		{id: "ktc-e3-key-urlsafe", tier: "decrypt", level: "baseline", bundle: "minimal", key: urlSafeKey},
		// Tier 4: bundle.
		{id: "ktc-b1-discrete-only", tier: "bundle", level: "baseline", bundle: "discrete-only"},
		{id: "ktc-b2-both-pdfs", tier: "bundle", level: "baseline", bundle: "both-pdfs"},
		{id: "ktc-b3-persistence-core", tier: "bundle", level: "baseline", bundle: "persistence-core"},
		{id: "ktc-b4-carin-dic", tier: "bundle", level: "baseline", bundle: "carin-dic"},
		{id: "ktc-b6-attestation-broken", tier: "bundle", level: "robustness", bundle: "attestation-broken"},
		{id: "ktc-b7-bad-type", tier: "bundle", level: "negative", bundle: "bad-type-document", stage: "bundle"},
		{id: "ktc-b8-single-entry", tier: "bundle", level: "negative", bundle: "bad-single-entry", stage: "bundle"},
		{id: "ktc-b9-no-timestamp", tier: "bundle", level: "negative", bundle: "bad-no-timestamp", stage: "bundle"},
		{id: "ktc-b10-two-patients", tier: "bundle", level: "negative", bundle: "bad-two-patients", stage: "bundle"},
		{id: "ktc-b11-not-pdf", tier: "bundle", level: "negative", bundle: "bad-document-type", stage: "bundle"},
	}
	if b64Label == "" || urlSafeKey == nil {
		t.Fatal("could not construct the base64url vectors")
	}
	for _, v := range vectors {
		t.Run(v.tier+"/"+v.id, func(t *testing.T) {
			input := link(v)
			before := requests.Load()
			stage, data, err := ktcReceive(input)
			if stage != v.stage {
				t.Fatalf("%s (%s): stage %q (%v), want %q", v.id, v.level, stage, err, v.stage)
			}
			if v.stage == "payload" && requests.Load() != before {
				t.Error("a request was made for a link refused before retrieval")
			}
			if v.stage != "" {
				if err == nil || strings.Contains(err.Error(), srv.URL) {
					t.Errorf("refusal %v: want an error without the link's url", err)
				}
				return
			}
			if got, want := entriesOf(t, data), count(v.bundle); got != want {
				t.Errorf("%d entries, want %d", got, want)
			}
			if v.label != "" {
				if p, _ := share.Decode(input); p.Label != v.label {
					t.Errorf("label %q, want %q", p.Label, v.label)
				}
			}
		})
	}
}

func entriesOf(t *testing.T, data []byte) int {
	var b struct{ Entry []any }
	if err := json.Unmarshal(data, &b); err != nil {
		t.Fatal(err)
	}
	return len(b.Entry)
}

// ktcReceive is a Kill-the-Clipboard receiver built from this package:
// decode the link, check the profile's payload rules (and the expiry,
// before any request), retrieve and decrypt the one file, check the
// bundle. It returns the stage that refused the link, if any.
func ktcReceive(input string) (stage string, bundle []byte, err error) {
	p, err := share.Decode(input)
	if err != nil {
		return "decode", nil, err
	}
	if err := CheckKTCPayload(p); err != nil {
		return "payload", nil, err
	}
	got, err := share.Retrieve(context.Background(), p, share.RetrieveOptions{Recipient: "Verona Health System", Now: func() time.Time { return ktcNow }})
	switch {
	case errors.Is(err, share.ErrLinkExpired):
		return "payload", nil, err
	case errors.Is(err, share.ErrDecrypt):
		return "decrypt", nil, err
	case err != nil:
		return "retrieve", nil, err
	}
	if len(got.Files) != 1 {
		return "retrieve", nil, fmt.Errorf("%d files", len(got.Files))
	}
	if err := CheckKTCBundle(got.Files[0].Data); err != nil {
		return "bundle", nil, err
	}
	return "", got.Files[0].Data, nil
}

// TestKTCMedicationsAsUSCore: a medication statement goes into a
// patient-shared bundle as the US Core MedicationRequest of a reported
// medication, dates and dose kept; one not taken stays a statement.
func TestKTCMedicationsAsUSCore(t *testing.T) {
	patient := ktcPatient(t)
	tests := []struct {
		name, statement string
		want            map[string]string // path -> value in the result
	}{
		{"active, patient-entered", `{"resourceType":"MedicationStatement","status":"active","medicationCodeableConcept":{"text":"metformin"},"subject":{"reference":"Patient/p1"},"informationSource":{"reference":"Patient/p1"},"dateAsserted":"2026-01-01T00:00:00Z","dosage":[{"text":"500 mg twice daily"}]}`,
			map[string]string{"resourceType": "MedicationRequest", "status": "active", "intent": "plan", "reportedBoolean": "true", "medicationCodeableConcept.text": "metformin",
				"authoredOn": "2026-01-01T00:00:00Z", "dosageInstruction.0.text": "500 mg twice daily", "requester.reference": "PATIENT", "subject.reference": "PATIENT"}},
		{"stopped, with its period", `{"resourceType":"MedicationStatement","status":"stopped","medicationCodeableConcept":{"text":"lisinopril"},"subject":{"reference":"Patient/p1"},"effectivePeriod":{"start":"2024-02","end":"2025-06-30"},"statusReason":[{"text":"cough"}]}`,
			map[string]string{"resourceType": "MedicationRequest", "status": "stopped", "authoredOn": "2024-02", "statusReason.text": "cough",
				"dosageInstruction.0.timing.repeat.boundsPeriod.end": "2025-06-30", "requester.reference": "PATIENT"}},
		{"intended", `{"resourceType":"MedicationStatement","status":"intended","medicationCodeableConcept":{"text":"statin"},"subject":{"reference":"Patient/p1"}}`,
			map[string]string{"resourceType": "MedicationRequest", "status": "draft"}},
		{"not taken", `{"resourceType":"MedicationStatement","status":"not-taken","medicationCodeableConcept":{"text":"ibuprofen"},"subject":{"reference":"Patient/p1"}}`,
			map[string]string{"resourceType": "MedicationStatement", "status": "not-taken"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := BuildKTC(patient, []record.Record{imported(t, tt.statement)}, KTCOptions{Now: ktcNow})
			if err != nil {
				t.Fatal(err)
			}
			if err := CheckKTCBundle(data); err != nil {
				t.Fatal(err)
			}
			var b struct {
				Entry []struct {
					FullURL  string         `json:"fullUrl"`
					Resource map[string]any `json:"resource"`
				}
			}
			json.Unmarshal(data, &b)
			got := record.Resource(b.Entry[1].Resource)
			for path, want := range tt.want {
				if want == "PATIENT" {
					want = b.Entry[0].FullURL
				}
				if g := got.Str(path); g != want {
					t.Errorf("%s = %q, want %q (%v)", path, g, want, got)
				}
			}
		})
	}
}
