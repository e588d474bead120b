package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/phr-project/phr/internal/syncbuf"
	"github.com/phr-project/phr/pkg/share"
)

func TestDemo(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb syncbuf.Buffer
	done := make(chan int, 1)
	dir := t.TempDir()
	go func() {
		done <- run(ctx, []string{"demo", "--dir", dir}, strings.NewReader(""), &out, &errb, func(string) string { return "" })
	}()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), "Serving until Ctrl-C") {
		if time.Now().After(deadline) {
			t.Fatalf("demo did not start serving:\n%s\n%s", out.String(), errb.String())
		}
		select {
		case code := <-done:
			t.Fatalf("demo exited %d:\n%s\n%s", code, out.String(), errb.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	text := out.String()
	for _, want := range []string{"Metformin", "Blood pressure", "Passcode: "} {
		if !strings.Contains(text, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	link := regexp.MustCompile(`http://127\.0\.0\.1:\d+/view#shlink:/\S+`).FindString(text)
	passcode := regexp.MustCompile(`Passcode: (\d{6})`).FindStringSubmatch(text)
	if link == "" || passcode == nil {
		t.Fatalf("no link or passcode in:\n%s", text)
	}
	p, err := share.Decode(link)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]string{"recipient": "test", "passcode": passcode[1]})
	status, resp := manifest(t, p, string(body))
	if status != 200 {
		t.Fatalf("manifest: %d %s", status, resp)
	}
	var m share.Manifest
	json.Unmarshal(resp, &m)
	key, _ := p.KeyBytes()
	if _, plain, err := share.DecryptFile(key, m.Files[0].Embedded); err != nil || !strings.Contains(string(plain), "Lisinopril") {
		t.Fatalf("decrypt: %v", err)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("demo exit %d: %s", code, errb.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("demo did not stop on cancel")
	}
}

// The demo removes the temporary directory it made, and says so, unless
// --keep.
func TestDemoCleansUp(t *testing.T) {
	for _, keep := range []bool{false, true} {
		tmp := t.TempDir()
		t.Setenv("TMPDIR", tmp)
		c := newCLI(t)
		args := []string{"demo", "--serve=false"}
		if keep {
			args = append(args, "--keep")
		}
		code, _, errOut := c.run(args...)
		if code != 0 {
			t.Fatalf("demo: %d %s", code, errOut)
		}
		left, _ := filepath.Glob(filepath.Join(tmp, "phr-demo-*"))
		if keep != (len(left) == 1) || keep == strings.Contains(errOut, "Removed the demo's directory") {
			t.Errorf("keep=%v: left %v, stderr %q", keep, left, errOut)
		}
	}
}
