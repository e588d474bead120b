// Package browsertest drives headless Chromium for the tests of phr's
// browser pages (the app, the viewer, the CLI's share path): it finds and
// starts the browser, and opens tabs that record what the page reported
// (exceptions, console errors, Content Security Policy violations), with
// the small helpers every page test uses (evaluate, read text, wait for a
// condition, screenshots).
//
// Without Chromium the tests skip, unless CI is set: then they fail, so CI
// cannot pass without running them. It imports nothing of phr's.
package browsertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// Chromium returns the path of Debian's chromium. Without it the test
// skips, unless CI is set: then it fails. what names the tests for the
// message ("the viewer's browser tests").
func Chromium(t testing.TB, what string) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("chromium is not installed, and CI is set: %s must run in CI (apt-get install chromium)", what)
	}
	t.Skipf("chromium is not installed (apt-get install chromium); skipping %s", what)
	return ""
}

// Start starts one headless chromium with a window of width x height for
// the whole test (the test's cleanup stops it); extra adds flags (a
// language). what is as for Chromium.
func Start(t testing.TB, what string, width, height int, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(Chromium(t, what)),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(opts, extra...)...)
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	if err := chromedp.Do(browserCtx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return browserCtx
}

// Config is how a Tab behaves.
type Config struct {
	// Timeout bounds everything the tab does.
	Timeout time.Duration
	// Wait is how long WaitFor polls before it fails the test; Poll is
	// the pause between polls.
	Wait, Poll time.Duration
	// Warnings makes console warnings count as page reports (Clean
	// fails on them), besides errors and failed assertions.
	Warnings bool
	// Where says where the page is (its state and what it shows), for
	// failure messages.
	Where func(*Tab) string
}

// Tab is one browser tab with a record of what the page reported:
// exceptions, console errors and Content Security Policy violations.
type Tab struct {
	T   testing.TB
	Ctx context.Context
	cfg Config

	mu       sync.Mutex
	messages []string
}

// cspProbe records securitypolicyviolation events. It is injected through
// the DevTools protocol, which the page's CSP does not govern.
const cspProbe = `document.addEventListener('securitypolicyviolation', (e) => {
  (window.__csp = window.__csp || []).push(e.violatedDirective + ' ' + e.blockedURI);
});`

// NewTab opens a tab in the browser (or browser context) parent.
func NewTab(t testing.TB, parent context.Context, cfg Config, opts ...chromedp.ContextOption) *Tab {
	t.Helper()
	tb := &Tab{T: t, cfg: cfg}
	ctx, cancel := chromedp.NewContext(parent, append(opts, chromedp.WithListener(tb.listen))...)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: cspProbe})
		return err
	})); err != nil {
		t.Fatal(err)
	}
	tctx, cancelT := context.WithTimeout(ctx, cfg.Timeout)
	t.Cleanup(cancelT)
	tb.Ctx = tctx
	return tb
}

func (tb *Tab) listen(ev any) {
	var msg string
	switch e := ev.(type) {
	case *runtime.EventExceptionThrown:
		msg = "exception: " + e.ExceptionDetails.Text
		if e.ExceptionDetails.Exception != nil && e.ExceptionDetails.Exception.Description != "" {
			msg += " " + e.ExceptionDetails.Exception.Description
		}
	case *runtime.EventConsoleAPICalled:
		if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeAssert ||
			(tb.cfg.Warnings && e.Type == runtime.ConsoleAPICalledTypeWarning) {
			msg = "console." + string(e.Type)
		}
	case *log.EventEntryAdded:
		// Refused requests (401, 404, 409, 429, 503) and a server going
		// away are logged by the browser as network errors: expected.
		// Anything about the security policy is not.
		csp := strings.Contains(e.Entry.Text, "Content Security Policy")
		if (e.Entry.Source != log.EntrySourceNetwork || csp) && (e.Entry.Level == log.EntryLevelError || csp) {
			msg = "log " + string(e.Entry.Source) + ": " + e.Entry.Text
		}
	}
	if msg != "" {
		tb.mu.Lock()
		tb.messages = append(tb.messages, msg)
		tb.mu.Unlock()
	}
}

// Where says where the page is, for failure messages.
func (tb *Tab) Where() string {
	if tb.cfg.Where == nil {
		return tb.Summary(400)
	}
	return tb.cfg.Where(tb)
}

// Do runs steps and fails the test if one fails.
func (tb *Tab) Do(steps ...chromedp.Action[chromedp.Void]) {
	tb.T.Helper()
	if err := chromedp.Do(tb.Ctx, steps...); err != nil {
		tb.T.Fatalf("browser: %v (%s)", err, tb.Where())
	}
}

// CDP runs fn (DevTools protocol calls) and fails the test if it fails.
func (tb *Tab) CDP(fn func(ctx context.Context, tg *chromedp.Target) error) {
	tb.T.Helper()
	tb.Do(chromedp.Func(fn))
}

// Eval evaluates a JavaScript expression (awaiting a promise) and returns
// its value as JSON decodes it.
func (tb *Tab) Eval(expr string) any {
	tb.T.Helper()
	v, err := chromedp.Run(tb.Ctx, chromedp.Evaluate[any](expr, chromedp.EvalAsValue, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.T.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// Text returns the textContent of the element sel names.
func (tb *Tab) Text(sel string) string {
	tb.T.Helper()
	return tb.elementString(sel, "textContent")
}

// InnerText returns the innerText of the element sel names: the text as
// rendered (no hidden elements; line breaks where the layout breaks).
func (tb *Tab) InnerText(sel string) string {
	tb.T.Helper()
	return tb.elementString(sel, "innerText")
}

func (tb *Tab) elementString(sel, prop string) string {
	tb.T.Helper()
	v, err := chromedp.Run(tb.Ctx, chromedp.Evaluate[*string](fmt.Sprintf(`(() => { const e = document.querySelector(%q); return e ? e.%s : null; })()`, sel, prop)))
	if err != nil {
		tb.T.Fatal(err)
	}
	if v == nil {
		tb.T.Fatalf("no element %s on the page (%s)", sel, tb.Where())
	}
	return *v
}

// Count returns how many elements sel matches.
func (tb *Tab) Count(sel string) int {
	tb.T.Helper()
	n, err := chromedp.Run(tb.Ctx, chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll(%q).length`, sel)))
	if err != nil {
		tb.T.Fatal(err)
	}
	return n
}

// AppData returns the data attribute name of the element #app (the page's
// state or screen), or "" without one.
func (tb *Tab) AppData(name string) string {
	s, _ := chromedp.Run(tb.Ctx, chromedp.Evaluate[string](fmt.Sprintf(`(document.getElementById('app') || {dataset: {}}).dataset[%q] || ''`, name)))
	return s
}

// Summary returns the page's text with its white space folded: the first
// n characters, or with a negative n the last -n.
func (tb *Tab) Summary(n int) string {
	slice := fmt.Sprintf("slice(0, %d)", n)
	if n < 0 {
		slice = fmt.Sprintf("slice(%d)", n)
	}
	s, _ := chromedp.Run(tb.Ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText.`+slice+` : ''`))
	return strings.Join(strings.Fields(s), " ")
}

// WaitFor polls a JavaScript condition until it holds; what names it in
// the failure message.
func (tb *Tab) WaitFor(what, cond string) {
	tb.T.Helper()
	deadline := time.Now().Add(tb.cfg.Wait)
	for {
		ok, err := chromedp.Run(tb.Ctx, chromedp.Evaluate[bool](`!!(`+cond+`)`))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			tb.T.Fatalf("waiting for %s: %s (err %v)", what, tb.Where(), err)
		}
		time.Sleep(tb.cfg.Poll)
	}
}

// WaitAppData waits until #app's data attribute name is want.
func (tb *Tab) WaitAppData(name, want string) {
	tb.T.Helper()
	tb.WaitFor(name+" "+want, fmt.Sprintf(`document.getElementById('app') && document.getElementById('app').dataset[%q] === %q`, name, want))
}

// Emulate sets the emulated media features ("prefers-color-scheme":
// "dark") and media type ("print", or "" for the screen).
func (tb *Tab) Emulate(media string, features map[string]string) {
	tb.T.Helper()
	p := emulation.SetEmulatedMediaParams{Media: media}
	for name, v := range features {
		p.Features = append(p.Features, &emulation.MediaFeature{Name: name, Value: v})
	}
	tb.CDP(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, p)
		return err
	})
}

// Clean checks that the page threw nothing and violated no CSP directive
// since the tab opened or the last Clean.
func (tb *Tab) Clean() {
	tb.T.Helper()
	v := tb.Eval(`window.__csp || []`)
	if list, ok := v.([]any); !ok || len(list) != 0 {
		tb.T.Errorf("CSP violations: %v", v)
	}
	tb.mu.Lock()
	defer tb.mu.Unlock()
	for _, m := range tb.messages {
		tb.T.Errorf("page reported: %s", m)
	}
	tb.messages = nil
}

// Screenshot returns a PNG of what action captures (chromedp.FullScreenshot,
// CaptureScreenshot, Screenshot of an element).
func (tb *Tab) Screenshot(action chromedp.Action[[]byte]) []byte {
	tb.T.Helper()
	png, err := chromedp.Run(tb.Ctx, action)
	if err != nil {
		tb.T.Fatal(err)
	}
	return png
}

// Save writes a PNG as NAME.png in the test's temporary directory and,
// when the environment variable env names a directory, there as
// PREFIX-NAME.png (to look at them, or for the docs).
func Save(t testing.TB, env, prefix, name string, png []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(t.TempDir(), name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
	if dir := os.Getenv(env); dir != "" {
		if err := os.WriteFile(filepath.Join(dir, prefix+"-"+name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// Contains fails the test (without stopping it) for each of wants that
// got, the text of what, lacks.
func Contains(t testing.TB, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("%s: %q lacks %q", what, got, w)
		}
	}
}
