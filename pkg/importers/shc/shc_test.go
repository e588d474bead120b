package shc

import (
	"bytes"
	"compress/flate"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/phr-project/phr/pkg/importers"
	"github.com/phr-project/phr/pkg/importers/fhir"
	"github.com/phr-project/phr/pkg/importers/importertest"
	"github.com/phr-project/phr/pkg/record"
)

var (
	testdata = importertest.Path()
	images   = testdata + "/shc/input/images"
	jwksPath = testdata + "/shc/issuer/.well-known/jwks.json"
)

const issuer = "https://spec.smarthealth.cards/examples/issuer"

func run(name string, data []byte, opts map[string]string) (*importertest.Sink, error) {
	return importertest.Import(New(), name, data, opts)
}

var withKeys = map[string]string{OptionIssuerKeys: jwksPath}

// qrText joins the numeric QR files of one example.
func qrText(t testing.TB, ex string, chunks ...int) []byte {
	files, _ := filepath.Glob(fmt.Sprintf("%s/example-%s-f-qr-code-numeric-value-*.txt", images, ex))
	var b []byte
	for i, f := range files {
		if chunks != nil && !slices.Contains(chunks, i) {
			continue
		}
		b = append(b, bytes.TrimSpace(importertest.ReadFile(t, f))...)
		b = append(b, '\n')
	}
	return b
}

// bundleCounts decodes an example's FHIR bundle independently.
func bundleCounts(t *testing.T, ex string) map[string]int {
	t.Helper()
	return importertest.BundleCounts(t, importertest.ReadFile(t, images+"/example-"+ex+"-a-fhirBundle.json"))
}

func TestDetect(t *testing.T) {
	want := map[string]bool{"a": false, "b": true, "c": true, "d": true, "e": true, "f": true, "g": false}
	files, _ := filepath.Glob(images + "/example-*")
	if len(files) < 25 {
		t.Fatalf("%d example files", len(files))
	}
	for _, f := range files {
		letter := strings.SplitN(filepath.Base(f), "-", 4)[2]
		b := importertest.ReadFile(t, f)
		if len(b) > importers.DetectSize {
			b = b[:importers.DetectSize]
		}
		if got := New().Detect(b); got != want[letter] {
			t.Errorf("Detect(%s) = %v", filepath.Base(f), got)
		}
		if want[letter] && (fhir.New().Detect(b) || fhir.NewNDJSON().Detect(b)) {
			t.Errorf("a FHIR importer claims %s", filepath.Base(f))
		}
	}
	for _, s := range []string{
		`{"resourceType":"Bundle","entry":[]}`, "{\"resourceType\":\"Patient\"}\n{\"resourceType\":\"Patient\"}\n",
		"<?xml version=\"1.0\"?><HealthData/>", "shlink:/eyJ1cmwiOiJodHRwczovL2V4YW1wbGUub3JnIn0",
		"eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..iv.ct.tag", "date,value\n", "",
	} {
		if New().Detect([]byte(s)) {
			t.Errorf("Detect(%.30q) = true", s)
		}
	}
	ips := importertest.ReadFile(t, testdata+"/shl/ips.json")
	if New().Detect(ips[:min(len(ips), importers.DetectSize)]) {
		t.Error("Detect(ips.json) = true")
	}
}

func TestImportExamples(t *testing.T) {
	for _, ex := range []string{"00", "01", "02", "03"} {
		want := bundleCounts(t, ex)
		forms := map[string][]byte{
			"d": importertest.ReadFile(t, images+"/example-"+ex+"-d-jws.txt"),
			"e": importertest.ReadFile(t, images+"/example-"+ex+"-e-file.smart-health-card"),
			"b": importertest.ReadFile(t, images+"/example-"+ex+"-b-jws-payload-expanded.json"),
			"c": importertest.ReadFile(t, images+"/example-"+ex+"-c-jws-payload-minified.json"),
		}
		if q := qrText(t, ex); len(q) > 0 {
			forms["f"] = q
		}
		var ref []string
		for _, form := range []string{"d", "e", "f", "b", "c"} {
			data, ok := forms[form]
			if !ok {
				continue
			}
			for _, keyed := range []bool{true, false} {
				name := fmt.Sprintf("%s-%s-keys=%v", ex, form, keyed)
				opts := map[string]string(nil)
				if keyed {
					opts = withKeys
				}
				s, err := run("example-"+ex+"-"+form, data, opts)
				// An unsigned payload (b, c) is imported unverified, keys or not.
				signed := form == "d" || form == "e" || form == "f"
				if err != nil || len(s.Fails) > 0 || len(s.Skips) > 0 {
					t.Fatalf("%s: %v %v %v", name, err, s.Fails, s.Skips)
				}
				if got := s.Counts(); fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("%s: counts %v, want %v", name, got, want)
				}
				for _, r := range s.Records {
					p := r.Provenance
					if p.System != issuer || p.Importer != "shc" || p.OriginalID == "" || p.Method != record.MethodImported {
						t.Fatalf("%s: provenance %+v", name, p)
					}
					if p.Verified != (keyed && signed) {
						t.Errorf("%s: Verified = %v", name, p.Verified)
					}
				}
				// The same card in any form gives the same records.
				fp := s.Fingerprints()
				if ref == nil {
					ref = fp
				} else if !slices.Equal(fp, ref) {
					t.Errorf("%s: fingerprints differ from the JWS form", name)
				}
			}
		}
	}
}

func TestExampleValues(t *testing.T) {
	s, err := run("card.smart-health-card", importertest.ReadFile(t, images+"/example-00-e-file.smart-health-card"), withKeys)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Records) != 4 || s.Records[0].ResourceType != "Patient" {
		t.Fatalf("records %v", s.Counts())
	}
	pat, _ := record.Parse(s.Records[0].Resource)
	if pat.Str("birthDate") != "1951-01-20" || pat.ID() == "" {
		t.Errorf("patient %s", s.Records[0].Resource)
	}
	imm, _ := record.Parse(s.Records[1].Resource)
	if !imm.HasCoding("vaccineCode", record.CVX, "207") || imm.Str("patient.reference") != "Patient/"+pat.ID() ||
		s.Records[1].Date.Format("2006-01-02") != "2021-01-01" || s.Records[1].Kind != record.KindImmunization {
		t.Errorf("immunization %s (date %v)", s.Records[1].Resource, s.Records[1].Date)
	}
	// Same again: identical records.
	s2, _ := run("card.smart-health-card", importertest.ReadFile(t, images+"/example-00-e-file.smart-health-card"), withKeys)
	if !slices.Equal(s.Fingerprints(), s2.Fingerprints()) {
		t.Error("re-import differs")
	}
}

func TestTamperedRefused(t *testing.T) {
	jws := strings.TrimSpace(string(importertest.ReadFile(t, images+"/example-00-d-jws.txt")))
	parts := strings.Split(jws, ".")
	p := []byte(parts[1])
	i := len(p) / 2
	if p[i] == 'A' {
		p[i] = 'B'
	} else {
		p[i] = 'A'
	}
	tampered := parts[0] + "." + string(p) + "." + parts[2]
	_, err := run("t.txt", []byte(tampered), withKeys)
	var pe *importers.ParseError
	if !errors.As(err, &pe) || !errors.Is(err, ErrBadSignature) || pe.File != "t.txt" || pe.Line != 1 {
		t.Errorf("tampered JWS: %v", err)
	}
	// In a file of two cards, one bad card refuses the file: nothing is
	// imported.
	good := strings.TrimSpace(string(importertest.ReadFile(t, images+"/example-01-d-jws.txt")))
	file, _ := json.Marshal(map[string][]string{"verifiableCredential": {good, tampered}})
	s, err := run("two.smart-health-card", file, withKeys)
	if !errors.As(err, &pe) || !errors.Is(err, ErrBadSignature) || pe.Path != "verifiableCredential[1]" || len(s.Records) != 0 {
		t.Errorf("file with a tampered card: %v, %d records", err, len(s.Records))
	}
	// A tampered signature.
	sig := []byte(parts[2])
	sig[5] ^= 1
	_, err = run("t.txt", []byte(parts[0]+"."+parts[1]+"."+string(sig)), withKeys)
	if !errors.Is(err, ErrBadSignature) && !errors.Is(err, ErrMalformed) {
		t.Errorf("tampered signature: %v", err)
	}
}

// sign makes a card signed with priv under kid.
func sign(t *testing.T, priv *ecdsa.PrivateKey, kid string, payload []byte) string {
	var z bytes.Buffer
	w, _ := flate.NewWriter(&z, flate.BestCompression)
	w.Write(payload)
	w.Close()
	hdr := b64.EncodeToString([]byte(`{"zip":"DEF","alg":"ES256","kid":"` + kid + `"}`))
	signing := hdr + "." + b64.EncodeToString(z.Bytes())
	h := sha256.Sum256([]byte(signing))
	r, s, err := ecdsa.Sign(rand.Reader, priv, h[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return signing + "." + b64.EncodeToString(sig)
}

func TestOwnKey(t *testing.T) {
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	payload := importertest.ReadFile(t, images+"/example-00-c-jws-payload-minified.json")
	payload = bytes.Replace(payload, []byte(issuer), []byte("https://clinic.example.org"), 1)
	kid := Thumbprint(&priv.PublicKey)
	raw, _ := priv.PublicKey.Bytes()
	jwks := fmt.Sprintf(`{"keys":[{"kty":"EC","crv":"P-256","use":"sig","x":%q,"y":%q}]}`, b64.EncodeToString(raw[1:33]), b64.EncodeToString(raw[33:]))
	card := sign(t, priv, kid, payload)

	s, err := run("mine.txt", []byte(card), map[string]string{OptionIssuerJWKS: jwks})
	if err != nil || len(s.Records) != 4 || !s.Records[0].Provenance.Verified || s.Records[0].Provenance.System != "https://clinic.example.org" {
		t.Fatalf("own key: %v %d", err, len(s.Records))
	}
	// The example issuer's keys do not know this kid.
	if _, err := run("mine.txt", []byte(card), withKeys); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("unknown kid: %v", err)
	}
	// Signed by another key under the issuer's kid: the signature fails.
	forged := sign(t, priv, "3Kfdg-XwP-7gXyywtUfUADwBumDOPKMQx-iELL11W9s", payload)
	if _, err := run("forged.txt", []byte(forged), withKeys); !errors.Is(err, ErrBadSignature) {
		t.Errorf("forged: %v", err)
	}
	// Both options together.
	s, err = run("mine.txt", []byte(card), map[string]string{OptionIssuerJWKS: jwks, OptionIssuerKeys: jwksPath})
	if err != nil || !s.Records[0].Provenance.Verified {
		t.Errorf("both options: %v", err)
	}
}

func TestQRChunks(t *testing.T) {
	all := qrText(t, "02")
	if bytes.Count(all, []byte("shc:/")) != 3 {
		t.Fatal("example 02 has three chunks")
	}
	s, err := run("qr.txt", all, withKeys)
	if err != nil || len(s.Records) == 0 || !s.Records[0].Provenance.Verified {
		t.Fatalf("all chunks: %v", err)
	}
	// Chunks in any order, with blank lines and CRLF.
	lines := strings.Split(strings.TrimSpace(string(all)), "\n")
	shuffled := lines[2] + "\r\n\r\n" + lines[0] + "\r\n" + lines[1] + "\r\n"
	s2, err := run("qr.txt", []byte(shuffled), withKeys)
	if err != nil || !slices.Equal(s.Fingerprints(), s2.Fingerprints()) {
		t.Errorf("shuffled chunks: %v", err)
	}
	_, err = run("qr.txt", qrText(t, "02", 0, 2), withKeys)
	var pe *importers.ParseError
	if !errors.As(err, &pe) || !errors.Is(err, ErrQRChunks) || !strings.Contains(err.Error(), "chunk 2 of 3 missing") {
		t.Errorf("missing chunk: %v", err)
	}
	// Several single-chunk cards in one file.
	two := append(qrText(t, "00"), qrText(t, "03")...)
	s, err = run("two.txt", two, withKeys)
	want := 0
	for _, ex := range []string{"00", "03"} {
		for _, n := range bundleCounts(t, ex) {
			want += n
		}
	}
	if err != nil || len(s.Records) != want {
		t.Errorf("two cards: %v %d", err, len(s.Records))
	}
}

func TestBadInput(t *testing.T) {
	jws := strings.TrimSpace(string(importertest.ReadFile(t, images+"/example-00-d-jws.txt")))
	qr := strings.TrimSpace(string(qrText(t, "00")))
	cases := []struct {
		name string
		in   string
		opts map[string]string
		is   error
		line int
		path string
	}{
		{"empty", "  \n", nil, ErrNotCard, 0, ""},
		{"truncated JWS", jws[:len(jws)/2], nil, ErrMalformed, 1, ""},
		{"two parts", "eyJhbGciOiJFUzI1NiJ9.e30", nil, ErrMalformed, 1, ""},
		{"alg none", b64.EncodeToString([]byte(`{"alg":"none"}`)) + ".e30.", nil, ErrUnsupported, 1, ""},
		{"odd digits", qr[:len(qr)-1], nil, ErrMalformed, 1, ""},
		{"truncated QR", qr[:len(qr)/2], withKeys, ErrMalformed, 1, ""},
		{"digits out of range", "shc:/99", nil, ErrMalformed, 1, ""},
		{"second line not QR", qr + "\nhello", nil, ErrMalformed, 2, ""},
		{"bad chunk numbers", "shc:/4/3/5676", nil, ErrQRChunks, 1, ""},
		{"truncated file", `{"verifiableCredential":["` + jws[:40], nil, ErrMalformed, 0, ""},
		{"credential not a string", `{"verifiableCredential":[5]}`, nil, ErrMalformed, 0, ""},
		{"other JSON", `{"resourceType":"Patient"}`, nil, ErrNotCard, 0, ""},
		{"payload without bundle", `{"iss":"https://x","vc":{}}`, nil, ErrMalformed, 0, ""},
		{"payload with bad bundle", `{"iss":"https://x","vc":{"credentialSubject":{"fhirBundle":{"resourceType":"Bundle","entry":{}}}}}`, nil, fhir.ErrWrongType, 0, "vc.credentialSubject.fhirBundle.entry"},
		{"payload bundle not a Bundle", `{"iss":"https://x","vc":{"credentialSubject":{"fhirBundle":{"resourceType":"Patient"}}}}`, nil, fhir.ErrNotResource, 0, "vc.credentialSubject.fhirBundle.resourceType"},
		{"payload bundle not an object", `{"iss":"https://x","vc":{"credentialSubject":{"fhirBundle":[]}}}`, nil, fhir.ErrNotResource, 0, "vc.credentialSubject.fhirBundle"},
		{"payload STU3", `{"iss":"https://x","vc":{"credentialSubject":{"fhirVersion":"3.0.1","fhirBundle":{}}}}`, nil, ErrUnsupported, 0, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := run("bad.txt", []byte(c.in), c.opts)
			var pe *importers.ParseError
			if !errors.As(err, &pe) || !errors.Is(err, c.is) {
				t.Fatalf("err = %v, want ParseError %v", err, c.is)
			}
			if pe.File != "bad.txt" || pe.Line != c.line || pe.Path != c.path {
				t.Errorf("at %s:%d %q, want line %d path %q", pe.File, pe.Line, pe.Path, c.line, c.path)
			}
			if len(s.Records) != 0 {
				t.Errorf("%d records", len(s.Records))
			}
			if strings.Contains(err.Error(), "Anyperson") {
				t.Errorf("error quotes the card: %v", err)
			}
		})
	}
}

func TestBadKeys(t *testing.T) {
	jws := importertest.ReadFile(t, images+"/example-00-d-jws.txt")
	for _, opts := range []map[string]string{
		{OptionIssuerKeys: "/nonexistent/jwks.json"},
		{OptionIssuerJWKS: `{"keys":[]}`},
		{OptionIssuerJWKS: `not json`},
		{OptionIssuerJWKS: `{"keys":[{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"}]}`},
		{OptionIssuerJWKS: `{"keys":[{"kty":"EC","crv":"P-256","x":"` + b64.EncodeToString(make([]byte, 32)) + `","y":"` + b64.EncodeToString(make([]byte, 32)) + `"}]}`},
	} {
		_, err := run("d.txt", jws, opts)
		var pe *importers.ParseError
		if !errors.Is(err, ErrIssuerKeys) || errors.As(err, &pe) {
			t.Errorf("%v: err = %v", opts, err)
		}
	}
	keys, err := ParseJWKS(importertest.ReadFile(t, jwksPath))
	if err != nil || len(keys) != 2 {
		t.Fatalf("issuer JWKS: %v %d", err, len(keys))
	}
	for kid, k := range keys {
		if Thumbprint(k) != kid {
			t.Errorf("kid %s is not the key's thumbprint", kid)
		}
	}
}
