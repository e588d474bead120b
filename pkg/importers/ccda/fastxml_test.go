package ccda

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var testLimits = parseLimits{depth: MaxDepth, elements: MaxElements}

// sameTree reports how a and b differ, or "" when they are the same tree.
func sameTree(a, b *node, path string) string {
	if a == nil || b == nil {
		if a != b {
			return path + ": one is nil"
		}
		return ""
	}
	if (a == spaceNode) != (b == spaceNode) {
		return path + ": space node on one side"
	}
	if a.space != b.space || a.local != b.local || a.text != b.text {
		return fmt.Sprintf("%s: {%q %q %q} vs {%q %q %q}", path, a.space, a.local, a.text, b.space, b.local, b.text)
	}
	if a.local != "" && a.line != b.line {
		return fmt.Sprintf("%s/%s: line %d vs %d", path, a.local, a.line, b.line)
	}
	if len(a.attrs) != len(b.attrs) {
		return fmt.Sprintf("%s/%s: %d vs %d attributes", path, a.local, len(a.attrs), len(b.attrs))
	}
	for i := range a.attrs {
		if a.attrs[i] != b.attrs[i] {
			return fmt.Sprintf("%s/%s: attribute %v vs %v", path, a.local, a.attrs[i], b.attrs[i])
		}
	}
	if len(a.kids) != len(b.kids) {
		return fmt.Sprintf("%s/%s: %d vs %d children", path, a.local, len(a.kids), len(b.kids))
	}
	for i := range a.kids {
		if a.kids[i].parent != a && a.kids[i] != spaceNode && a.kids[i].local != "" {
			return path + ": wrong parent"
		}
		if d := sameTree(a.kids[i], b.kids[i], path+"/"+a.local); d != "" {
			return d
		}
	}
	return ""
}

// compareParsers checks the property fastParse promises: when it reads a
// document, parseStd reads it too, into the same tree and anchors.
func compareParsers(t *testing.T, name string, data []byte, lim parseLimits) (fast bool) {
	t.Helper()
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	froot, fids, ok := fastParse(data, lim)
	sroot, sids, err := parseStd(data, lim)
	if !ok {
		return false
	}
	if err != nil {
		t.Fatalf("%s: fastParse read it, parseStd says %v", name, err)
	}
	if d := sameTree(froot, sroot, ""); d != "" {
		t.Fatalf("%s: trees differ at %s", name, d)
	}
	if len(fids) != len(sids) {
		t.Fatalf("%s: %d vs %d IDs", name, len(fids), len(sids))
	}
	for id, n := range sids {
		if f := fids[id]; f == nil || f.local != n.local || f.line != n.line {
			t.Fatalf("%s: ID %q differs", name, id)
		}
	}
	return true
}

// TestFastParseCorpus: every XML file in the shared test data gives the
// same tree from both parsers, and the fast one reads every UTF-8 one.
func TestFastParseCorpus(t *testing.T) {
	var files, fast int
	var slow []string
	err := filepath.WalkDir(testdata, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if !bytes.Contains(data[:min(len(data), 512)], []byte("<")) {
			return nil
		}
		files++
		if compareParsers(t, p, data, testLimits) {
			fast++
		} else if _, _, err := parseStd(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")), testLimits); err == nil {
			slow = append(slow, strings.TrimPrefix(p, testdata+"/"))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d XML files, %d read by fastParse, %d well-formed ones left to encoding/xml: %v", files, fast, len(slow), slow)
	for _, p := range slow {
		data, _ := os.ReadFile(filepath.Join(testdata, p))
		if plainUTF8(data) && !bytes.Contains(data, []byte("<!DOCTYPE")) && !bytes.Contains(data, []byte("encoding=\"ISO")) {
			t.Errorf("%s: plain UTF-8, yet fastParse gave up", p)
		}
	}
	if fast < 200 {
		t.Errorf("fastParse read only %d files", fast)
	}
}

// TestFastParseCases: the corners where encoding/xml has its own rules.
func TestFastParseCases(t *testing.T) {
	tests := []struct {
		name string
		xml  string
		fast bool // whether fastParse must read it
	}{
		{"plain", `<a><b c="1">x</b></a>`, true},
		{"declaration", `<?xml version="1.0" encoding="utf-8"?><a/>`, true},
		{"stylesheet", "<?xml version=\"1.0\"?>\n<?xml-stylesheet type=\"text/xsl\" href=\"CDA.xsl\"?>\n<a/>", true},
		{"latin1", `<?xml version="1.0" encoding="ISO-8859-1"?><a/>`, false},
		{"version 1.1", `<?xml version="1.1"?><a/>`, false},
		{"namespaces", `<a xmlns="urn:hl7-org:v3" xmlns:x="urn:x" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><x:b xsi:type="CD" x:c="1"/><c xmlns="urn:other"/><d/></a>`, true},
		{"unbound prefix", `<a><sdtc:b/><c y:z="1"/></a>`, true},
		{"xml prefix", `<a xml:lang="en"><xml:b/></a>`, true},
		{"element named xmlns", `<a xmlns="urn:x"><xmlns/></a>`, true},
		{"redeclared", `<a xmlns:p="1"><b xmlns:p="2" xmlns:p="3"><p:c/></b><p:d/></a>`, true},
		{"entities", `<a t="&lt;&amp;&quot;&apos;&gt;&#65;&#x42;">&#xe9;&lt;&amp;</a>`, true},
		{"CRLF", "<a\r\nb=\"1\r\n2\r3\">x\r\ny\rz\r\n</a>\r\n", true},
		{"comments", `<!-- c --><a>x<!--y-->z<!---->w</a><!--e-->`, true},
		{"double dash", `<a><!-- a -- b --></a>`, false},
		{"CDATA", `<a><![CDATA[<b>&amp;]]><![CDATA[]]>x</a>`, true},
		{"unescaped CDATA end", `<a>x]]>y</a>`, false},
		{"space text", "<a>\u00a0<b/>\u3000 </a>", true},
		{"no space between attributes", `<a b="1"c='2'/>`, true},
		{"unknown entity", `<a>&nbsp;</a>`, false},
		{"bare ampersand", `<a>fish & chips</a>`, false},
		{"null char ref", `<a>&#0;</a>`, false},
		{"surrogate char ref", `<a>&#xD800;</a>`, false},
		{"DOCTYPE", `<!DOCTYPE a><a/>`, false},
		{"two roots", `<a/><b/>`, false},
		{"text outside", `<a/>x`, false},
		{"unclosed", `<a><b></a>`, false},
		{"truncated", `<a><b>`, false},
		{"unicode name", `<a><é/></a>`, false},
		{"two colons", `<a:b:c/>`, false},
		{"lt in attribute", `<a b="<"/>`, false},
		{"unquoted attribute", `<a b=1/>`, false},
		{"control character", "<a>\x01</a>", false},
		{"invalid UTF-8", "<a>\xff</a>", false},
		{"IDs", `<a><b ID="x"/><c ID="x"/><d ID=""/></a>`, true},
		{"empty", ``, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := compareParsers(t, tt.name, []byte(tt.xml), testLimits); got != tt.fast {
				t.Errorf("fastParse read it: %v, want %v", got, tt.fast)
			}
		})
	}
	// Limits are parseStd's to report.
	deep := strings.Repeat("<a>", 5) + strings.Repeat("</a>", 5)
	if _, _, ok := fastParse([]byte(deep), parseLimits{depth: 4, elements: 100}); ok {
		t.Error("too deep, yet read")
	}
	if _, _, ok := fastParse([]byte(deep), parseLimits{depth: 10, elements: 4}); ok {
		t.Error("too many elements, yet read")
	}
}

// FuzzFastParse: whatever fastParse reads, parseStd reads the same way.
func FuzzFastParse(f *testing.F) {
	for _, p := range []string{"hl7-c-cda-examples", "chb-sample_ccdas"} {
		paths, _ := filepath.Glob(filepath.Join(testdata, p, "*", "*.xml"))
		for i, path := range paths {
			if i%10 != 0 {
				continue
			}
			if data, err := os.ReadFile(path); err == nil && len(data) < 64<<10 {
				f.Add(data)
			}
		}
	}
	f.Add([]byte(`<?xml version="1.0"?><a xmlns="urn:hl7-org:v3" xmlns:x="urn:x"><x:b c="&lt;&#65;">t&amp;<![CDATA[<]]><!--c--></x:b></a>`))
	f.Add([]byte("<a\r\nb='1'>\r\n\u00a0</a>"))
	f.Fuzz(func(t *testing.T, data []byte) {
		compareParsers(t, "input", data, parseLimits{depth: 32, elements: 4096})
	})
}
