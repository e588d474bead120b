package server

import (
	"bytes"
	"context"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/phr-project/phr/pkg/importers/all"
	"github.com/phr-project/phr/pkg/importers/pipeline"
	"github.com/phr-project/phr/pkg/importers/shlink"
	"github.com/phr-project/phr/pkg/server/api"
	"github.com/phr-project/phr/pkg/share"
	"github.com/phr-project/phr/pkg/vault"
)

// uploadForm POSTs an import with form fields only (a link), or with a
// file too when name is not empty.
func (c *client) uploadForm(name string, file []byte, fields ...string) *resp {
	c.t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for i := 0; i+1 < len(fields); i += 2 {
		w.WriteField(fields[i], fields[i+1])
	}
	if name != "" {
		fw, _ := w.CreateFormFile("file", name)
		fw.Write(file)
	}
	w.Close()
	return c.do("POST", "/api/v1/imports", &buf, "Content-Type", w.FormDataContentType())
}

// shareCard makes a share of the specification's example card bundle on
// ts, with a passcode, and returns its link.
func shareCard(t *testing.T, ts *testServer) string {
	t.Helper()
	bundle, err := os.ReadFile("../../../shared/testdata/shc/input/images/example-00-a-fhirBundle.json")
	if err != nil {
		t.Fatal(err)
	}
	key := share.NewKey()
	jwe, _ := share.EncryptFile(key, share.ContentTypeFHIR, bundle, true)
	var created api.ShareCreated
	r := ts.signup("clinic").do("POST", "/api/v1/shares", api.CreateShareRequest{
		Files: []api.ShareFile{{ContentType: share.ContentTypeFHIR, JWE: jwe}}, ExpiresAt: time.Now().Add(time.Hour), Passcode: "4711", Label: "Visit",
	})
	want(t, r, http.StatusCreated)
	r.decode(t, &created)
	link, err := share.ViewerLink(created.ViewerURL, created.Payload(key))
	if err != nil {
		t.Fatal(err)
	}
	return link
}

// TestImportLink: the import API takes a link in the field "link" (and
// in a QR code image), fetches it with the passcode of the field
// "passcode", and imports its files; a wrong passcode is a 422 that says
// how many attempts are left.
func TestImportLink(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.Importers = all.Default(); c.AllowPrivateLinks = true })
	link := shareCard(t, ts)
	bob := ts.signup("bob")

	r := bob.uploadForm("", nil, "link", link, "passcode", "0000")
	want(t, r, http.StatusUnprocessableEntity)
	if !strings.Contains(r.errMsg(), "9 attempts left") {
		t.Fatalf("wrong passcode: %s", r.errMsg())
	}
	// Bob's vault names nobody yet: the link's patient becomes its owner.
	r = bob.uploadForm("", nil, "link", link, "passcode", "4711", "recipient", "Bob's phone")
	want(t, r, http.StatusCreated)
	var res api.ImportResult
	r.decode(t, &res)
	if len(res.Files) != 1 || res.Files[0].Added != 4 || !strings.HasPrefix(res.Files[0].File, "Visit (127.0.0.1:") {
		t.Fatalf("%+v", res.Files)
	}
	png, err := share.QRPNG(link, 600)
	if err != nil {
		t.Fatal(err)
	}
	r = bob.uploadForm("link.png", png, "passcode", "4711")
	want(t, r, http.StatusCreated)
	r.decode(t, &res)
	if len(res.Files) != 1 || res.Files[0].Duplicates != 4 {
		t.Fatalf("QR image: %+v", res.Files)
	}
	for _, tt := range []struct {
		fields []string
		file   bool
		msg    string
	}{
		{[]string{"link", "https://example.org/"}, false, "not a SMART Health Link"},
		{[]string{"link", link}, true, "not both"},
		{[]string{"passcode", strings.Repeat("x", share.MaxPasscodeLength+1)}, false, "passcode: at most"},
	} {
		name := ""
		if tt.file {
			name = "f.txt"
		}
		r := bob.uploadForm(name, []byte("x"), tt.fields...)
		want(t, r, http.StatusBadRequest)
		if !strings.Contains(r.errMsg(), tt.msg) {
			t.Errorf("%v: %s", tt.fields, r.errMsg())
		}
	}
	if strings.Contains(ts.logs.String(), "shlink:/") || strings.Contains(ts.logs.String(), "4711") {
		t.Fatal("the log holds a link or a passcode")
	}
}

// TestImportLinkPrivateRefused: by default phrd fetches links from public
// addresses only: a link to its own loopback address is refused.
func TestImportLinkPrivateRefused(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.Importers = all.Default() })
	link := shareCard(t, ts)
	r := ts.signup("bob").uploadForm("", nil, "link", link, "passcode", "4711")
	want(t, r, http.StatusUnprocessableEntity)
	if !strings.Contains(r.errMsg(), "not public") {
		t.Fatalf("%s", r.errMsg())
	}
}

// TestReceiveLocationFromPHRD: phrd's location URLs (asked for with a
// small embeddedLengthMax) serve the files a receiver decrypts.
func TestReceiveLocationFromPHRD(t *testing.T) {
	ts := newTestServer(t, nil)
	link := shareCard(t, ts)
	v := testVaultForLinks(t)
	reps, err := shlink.Receive(context.Background(), v, link, shlink.Options{
		Passcode:          func() (string, error) { return "4711", nil },
		EmbeddedLengthMax: 1,
		Import:            pipeline.Options{AcceptPatientMismatch: true},
	})
	if err != nil || len(reps) != 1 || reps[0].Added != 4 {
		t.Fatalf("%v %+v", err, reps)
	}
	if !strings.Contains(ts.logs.String(), "/shl/:id/f/:token") {
		t.Fatal("the file was not fetched by location")
	}
}

func testVaultForLinks(t *testing.T) *vault.Vault {
	t.Helper()
	id, _ := age.GenerateX25519Identity()
	v, err := vault.Create(filepath.Join(t.TempDir(), "v.phr"), []vault.SlotSpec{{Kind: vault.SlotDevice, Recipients: []age.Recipient{id.Recipient()}}}, &vault.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}
