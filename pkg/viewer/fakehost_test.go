package viewer

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phr-project/phr/pkg/share"
)

// fakeHost is a minimal SMART Health Link host for the browser tests: the
// viewer at /view, manifests at /shl/{id} (POST, or GET for U links) and
// location files at /files/{id}. It follows the protocol's answers: 401
// {"remainingAttempts": n} for a wrong passcode, 404 for unknown, revoked
// or locked links.
type fakeHost struct {
	srv *httptest.Server

	mu         sync.Mutex
	shares     map[string]*fakeShare
	files      map[string]string // location id -> JWE
	requests   map[string]int    // share id -> manifest requests
	recipients []string
	fileGets   int
}

type fakeShare struct {
	passcode string
	attempts int    // wrong passcodes left before the link locks
	revoked  bool   // answer 404
	direct   string // the JWE a U link's GET returns
	manifest share.Manifest
	// later are the manifests of the second and later requests (the last
	// one repeats); without them every request gets manifest. A host
	// hands out fresh location URLs with each manifest.
	later []share.Manifest
}

func newFakeHost(t *testing.T) *fakeHost {
	t.Helper()
	h := &fakeHost{
		shares:   map[string]*fakeShare{},
		files:    map[string]string{},
		requests: map[string]int{},
	}
	mux := http.NewServeMux()
	mux.Handle(Path, Handler())
	mux.Handle(Path+"/", Handler())
	mux.HandleFunc("/shl/", h.serveManifest)
	mux.HandleFunc("/files/", h.serveFile)
	h.srv = httptest.NewServer(mux) // listens on 127.0.0.1:0
	t.Cleanup(h.srv.Close)
	return h
}

// viewerLink is the viewer link of a payload written as JSON, for links
// share.ViewerLink would not make (another implementation's flags, a
// later version).
func (h *fakeHost) viewerLink(payload string) string {
	return h.srv.URL + Path + "#shlink:/" + base64.RawURLEncoding.EncodeToString([]byte(payload))
}

// add registers a share and returns its viewer link.
func (h *fakeHost) add(t *testing.T, id string, key []byte, p share.Payload, s *fakeShare) string {
	t.Helper()
	h.mu.Lock()
	h.shares[id] = s
	h.mu.Unlock()
	p.URL = h.srv.URL + "/shl/" + id
	p.Key = share.EncodeKey(key)
	link, err := share.ViewerLink(h.srv.URL+Path, p)
	if err != nil {
		t.Fatal(err)
	}
	return link
}

// addFile stores a JWE to be served at a location URL and returns the URL.
func (h *fakeHost) addFile(id, jwe string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.files[id] = jwe
	return h.srv.URL + "/files/" + id
}

func (h *fakeHost) requestCount(id string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.requests[id]
}

func (h *fakeHost) fileDownloads() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.fileGets
}

func (h *fakeHost) lastRecipient() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.recipients) == 0 {
		return ""
	}
	return h.recipients[len(h.recipients)-1]
}

func (h *fakeHost) serveManifest(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimPrefix(r.URL.Path, "/shl/")
	h.mu.Lock()
	defer h.mu.Unlock()
	h.requests[id]++
	s := h.shares[id]
	if s == nil || s.revoked {
		http.NotFound(w, r)
		return
	}
	if s.direct != "" {
		recipient := r.URL.Query().Get(share.RecipientParam)
		if r.Method != http.MethodGet || recipient == "" {
			http.Error(w, "GET with a recipient, please", http.StatusBadRequest)
			return
		}
		h.recipients = append(h.recipients, recipient)
		w.Header().Set("Content-Type", share.ContentTypeJOSE)
		w.Write([]byte(s.direct))
		return
	}
	if r.Method != http.MethodPost {
		http.Error(w, "POST the manifest request", http.StatusMethodNotAllowed)
		return
	}
	var req share.ManifestRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Validate() != nil {
		http.Error(w, "bad manifest request", http.StatusBadRequest)
		return
	}
	h.recipients = append(h.recipients, req.Recipient)
	if s.passcode != "" && req.Passcode != s.passcode {
		s.attempts--
		if s.attempts <= 0 {
			s.revoked = true // locked: every later request gets 404
		}
		writeJSON(w, http.StatusUnauthorized, share.InvalidPasscodeResponse{RemainingAttempts: max(s.attempts, 0)})
		return
	}
	m := s.manifest
	if n := h.requests[id]; n > 1 && len(s.later) > 0 {
		m = s.later[min(n-2, len(s.later)-1)]
	}
	writeJSON(w, http.StatusOK, m)
}

func (h *fakeHost) serveFile(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	jwe, ok := h.files[strings.TrimPrefix(r.URL.Path, "/files/")]
	if !ok || r.Method != http.MethodGet {
		http.NotFound(w, r)
		return
	}
	h.fileGets++
	w.Header().Set("Content-Type", share.ContentTypeJOSE)
	w.Write([]byte(jwe))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// encrypt makes a JWE of v (marshalled as JSON) for the tests.
func encrypt(t *testing.T, key []byte, contentType string, v any, compress bool) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	jwe, err := share.EncryptFile(key, contentType, b, compress)
	if err != nil {
		t.Fatal(err)
	}
	return jwe
}

// xssName is a medication name that must show up as text, never run.
const xssName = `<script>window.pwned=1</script><img src=x onerror="window.pwned=2">`

type obj = map[string]any

func coding(system, code, display string) obj {
	return obj{"system": system, "code": code, "display": display}
}

func concept(text string, codings ...obj) obj {
	c := obj{}
	if text != "" {
		c["text"] = text
	}
	if len(codings) > 0 {
		list := make([]any, len(codings))
		for i, x := range codings {
			list[i] = x
		}
		c["coding"] = list
	}
	return c
}

const (
	loinc    = "http://loinc.org"
	snomed   = "http://snomed.info/sct"
	obsCat   = "http://terminology.hl7.org/CodeSystem/observation-category"
	ucum     = "http://unitsofmeasure.org"
	patRef   = "Patient/p1"
	fhirTime = "2006-01-02T15:04:05Z07:00"
)

func quantity(v float64, unit, code string) obj {
	return obj{"value": v, "unit": unit, "system": ucum, "code": code}
}

func vitalCategory() []any {
	return []any{concept("", coding(obsCat, "vital-signs", "Vital Signs"))}
}

func labCategory() []any {
	return []any{concept("", coding(obsCat, "laboratory", "Laboratory"))}
}

func bundle(resources ...obj) obj {
	entries := make([]any, len(resources))
	for i, r := range resources {
		entries[i] = obj{"fullUrl": "urn:uuid:" + r["resourceType"].(string) + "-" + r["id"].(string), "resource": r}
	}
	return obj{"resourceType": "Bundle", "type": "collection", "entry": entries}
}

// testRecord is the shared record of the good share: every section of the
// viewer has something in it. base is the first day of the vital series.
func testRecord(base time.Time) obj {
	day := func(n int) string { return base.AddDate(0, 0, n).Format(fhirTime) }
	res := []obj{
		{"resourceType": "Patient", "id": "p1",
			"name":       []any{obj{"use": "official", "family": "Rivera", "given": []any{"Alex"}}},
			"birthDate":  "1980-04-12",
			"gender":     "female",
			"identifier": []any{obj{"type": concept("MRN"), "system": "urn:example:mrn", "value": "MRN-0042"}}},
		{"resourceType": "AllergyIntolerance", "id": "a1",
			"clinicalStatus": concept("", coding("http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "active", "Active")),
			"criticality":    "high",
			"code":           concept("Penicillin"),
			"patient":        obj{"reference": patRef},
			"reaction":       []any{obj{"manifestation": []any{concept("Hives")}, "severity": "severe"}}},
		{"resourceType": "MedicationStatement", "id": "m1", "status": "active",
			"medicationCodeableConcept": concept("Metformin 500 mg tablet"),
			"subject":                   obj{"reference": patRef},
			"effectivePeriod":           obj{"start": "2019-03-02"},
			"dosage":                    []any{obj{"text": "500 mg twice daily"}},
			"reasonCode":                []any{concept("Type 2 diabetes")}},
		{"resourceType": "MedicationRequest", "id": "m2", "status": "active", "intent": "order",
			"medicationCodeableConcept": concept(xssName),
			"subject":                   obj{"reference": patRef},
			"authoredOn":                "2024-01-15",
			"dosageInstruction":         []any{obj{"text": "1 tablet daily"}}},
		{"resourceType": "MedicationStatement", "id": "m3", "status": "completed",
			"medicationCodeableConcept": concept("Lisinopril 10 mg"),
			"subject":                   obj{"reference": patRef}},
		{"resourceType": "Condition", "id": "c1",
			"clinicalStatus": concept("", coding("http://terminology.hl7.org/CodeSystem/condition-clinical", "active", "Active")),
			"code":           concept("Type 2 diabetes mellitus"),
			"subject":        obj{"reference": patRef},
			"onsetDateTime":  "2019-03"},
		{"resourceType": "Immunization", "id": "i1", "status": "completed",
			"vaccineCode":        concept("Influenza vaccine"),
			"patient":            obj{"reference": patRef},
			"occurrenceDateTime": "2024-10-01",
			"lotNumber":          "FLU-123",
			"primarySource":      false},
		{"resourceType": "Observation", "id": "ldl", "status": "final", "category": labCategory(),
			"code":              concept("LDL cholesterol", coding(loinc, "13457-7", "LDL Cholesterol")),
			"subject":           obj{"reference": patRef},
			"effectiveDateTime": day(2),
			"valueQuantity":     quantity(162, "mg/dL", "mg/dL"),
			"referenceRange":    []any{obj{"high": quantity(130, "mg/dL", "mg/dL")}}},
		{"resourceType": "Observation", "id": "sym1", "status": "final",
			"category":          []any{concept("Symptom", coding(snomed, "418799008", "Finding reported by subject or history provider")), concept("", coding(obsCat, "survey", "Survey"))},
			"code":              concept("Headache"),
			"subject":           obj{"reference": patRef},
			"effectiveDateTime": day(3),
			"valueInteger":      6},
		{"resourceType": "Observation", "id": "sym2", "status": "final",
			"category":          []any{concept("Symptom", coding(snomed, "418799008", "Finding reported by subject or history provider"))},
			"code":              concept("Dizziness"),
			"subject":           obj{"reference": patRef},
			"effectiveDateTime": day(1),
			"valueInteger":      3,
			"note":              []any{obj{"text": "after standing up"}}},
		{"resourceType": "MedicationAdministration", "id": "d1", "status": "completed",
			"medicationCodeableConcept": concept("Metformin 500 mg tablet"),
			"subject":                   obj{"reference": patRef},
			"effectiveDateTime":         day(4),
			"dosage":                    obj{"dose": quantity(500, "mg", "mg")}},
		{"resourceType": "Coverage", "id": "cov1", "status": "active"},
	}
	bp := [][2]float64{{132, 86}, {128, 84}, {135, 88}, {126, 80}, {128, 82}}
	for i, v := range bp {
		res = append(res, obj{"resourceType": "Observation", "id": "bp" + strconv.Itoa(i), "status": "final",
			"category":          vitalCategory(),
			"code":              concept("Blood pressure", coding(loinc, "85354-9", "Blood pressure panel")),
			"subject":           obj{"reference": patRef},
			"effectiveDateTime": day(i),
			"component": []any{
				obj{"code": concept("Systolic", coding(loinc, "8480-6", "Systolic blood pressure")), "valueQuantity": quantity(v[0], "mmHg", "mm[Hg]")},
				obj{"code": concept("Diastolic", coding(loinc, "8462-4", "Diastolic blood pressure")), "valueQuantity": quantity(v[1], "mmHg", "mm[Hg]")},
			}})
	}
	for _, vs := range []struct {
		id, text, code, display, unit, ucum string
		values                              []float64
	}{
		{"glu", "Blood glucose", "2339-0", "Glucose [Mass/volume] in Blood", "mg/dL", "mg/dL", []float64{104, 98, 112}},
		{"wt", "Body weight", "29463-7", "Body weight", "kg", "kg", []float64{82.4, 82.1, 81.8, 81.5}},
		{"hr", "Heart rate", "8867-4", "Heart rate", "bpm", "/min", []float64{72, 68}},
	} {
		for i, v := range vs.values {
			res = append(res, obj{"resourceType": "Observation", "id": vs.id + strconv.Itoa(i), "status": "final",
				"category":          vitalCategory(),
				"code":              concept(vs.text, coding(loinc, vs.code, vs.display)),
				"subject":           obj{"reference": patRef},
				"effectiveDateTime": day(i),
				"valueQuantity":     quantity(v, vs.unit, vs.ucum)})
		}
	}
	for i, v := range []float64{7.4, 7.1, 6.8} {
		o := obj{"resourceType": "Observation", "id": "a1c" + strconv.Itoa(i), "status": "final",
			"category":          labCategory(),
			"code":              concept("Hemoglobin A1c", coding(loinc, "4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood")),
			"subject":           obj{"reference": patRef},
			"effectiveDateTime": base.AddDate(0, -3*(2-i), 0).Format(fhirTime),
			"valueQuantity":     quantity(v, "%", "%"),
			"referenceRange":    []any{obj{"high": quantity(5.6, "%", "%")}},
		}
		if i == 0 {
			o["interpretation"] = []any{concept("", coding("http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "H", "High"))}
		}
		res = append(res, o)
	}
	return bundle(res...)
}

// testDocuments is the second file of the good share (served by location):
// a plain-text note and a PDF.
func testDocuments(base time.Time) obj {
	return bundle(
		obj{"resourceType": "DocumentReference", "id": "n1", "status": "current",
			"type":    concept("Patient note", coding(loinc, "51855-5", "Patient Note")),
			"subject": obj{"reference": patRef},
			"date":    base.AddDate(0, 0, 4).Format(fhirTime),
			"content": []any{obj{"attachment": obj{"contentType": "text/plain; charset=utf-8",
				"data": b64std("Feeling better since the dose change.\n<b>not bold</b>")}}}},
		obj{"resourceType": "DocumentReference", "id": "n2", "status": "current",
			"type":        concept("Discharge summary"),
			"description": "Discharge summary, City Hospital",
			"subject":     obj{"reference": patRef},
			"date":        "2023-06-30",
			"content": []any{obj{"attachment": obj{"contentType": "application/pdf", "title": "discharge.pdf",
				"data": b64std("%PDF-1.4\n% not a real PDF\n")}}}},
	)
}
