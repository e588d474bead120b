package applehealth

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/phr-project/phr/pkg/importers"
	"github.com/phr-project/phr/pkg/record"
)

// Name is the importer's format name, as --format takes it.
const Name = "apple-health"

// System is the provenance system of every record this importer makes.
const System = "Apple Health"

// Limits on what one export may hold. docs/formats/limits.md lists them
// with the limits of the other importers. Over any of them the file fails
// with ErrTooLarge, except MaxItemBytes, which fails one item.
const (
	// MaxDepth is the deepest element nesting accepted. Apple nests four
	// levels.
	MaxDepth = 256
	// MaxTokenBytes bounds the bytes of one XML token (a start tag with its
	// attributes, a run of text, a comment, the DOCTYPE): 1 MiB. Apple's
	// DOCTYPE, the longest, is about 10 KiB.
	MaxTokenBytes = 1 << 20
	// MaxNameBytes bounds an element or attribute name: 256 bytes.
	MaxNameBytes = 256
	// MaxAttributes is the most attributes one element may have: 128.
	// Apple writes at most a dozen.
	MaxAttributes = 128
	// MaxAttrBytes bounds one attribute value: 64 KiB. Apple's longest
	// (device descriptions, metadata) are a few hundred bytes.
	MaxAttrBytes = 64 << 10
	// MaxItemBytes bounds what is kept of one top-level item (a Record,
	// Workout, Correlation) and its children, names and attributes
	// counted: 4 MiB. An item over it is reported with sink.Fail and not
	// imported; the rest of the file is.
	MaxItemBytes = 4 << 20
	// MaxZipEntries is the most entries an export.zip may list: 100,000.
	// A decade of workouts, ECGs and clinical records is a few thousand.
	MaxZipEntries = 100_000
	// MaxZipDirectorySize bounds the zip's central directory: 16 MiB. Each
	// entry listed costs memory before anything is read, so this is
	// checked while the directory is read.
	MaxZipDirectorySize = 16 << 20
	// MaxExportSize bounds export.xml inside a zip, uncompressed: 16 GiB,
	// several times the largest exports seen. A plain export.xml is
	// streamed and has no limit.
	MaxExportSize = 16 << 30
	// MaxCompressionRatio bounds how much export.xml may expand: 200
	// times its compressed size (beyond its first MiB). Apple's XML
	// compresses about 20 times; DEFLATE bombs reach 1000.
	MaxCompressionRatio = 200
)

// ZipExportPath is where the Health app puts export.xml inside export.zip.
const ZipExportPath = "apple_health_export/export.xml"

// Errors callers may branch on; they arrive wrapped in an
// *importers.ParseError.
var (
	// ErrEntityDeclaration reports an <!ENTITY declaration in the DTD.
	ErrEntityDeclaration = errors.New("entity declarations are not allowed")
	// ErrNotSeekable reports a zip archive given as a stream.
	ErrNotSeekable = errors.New("a zip archive needs a seekable file (unzip it, or import the file itself rather than a pipe)")
	// ErrNoExport reports a zip archive without apple_health_export/export.xml.
	ErrNoExport = errors.New("zip archive has no " + ZipExportPath)
	// ErrTooLarge reports input over one of the limits above.
	ErrTooLarge = errors.New("input exceeds a size limit")
	// ErrExternalDTD reports a DOCTYPE that refers to an external DTD
	// (SYSTEM or PUBLIC) or uses parameter entity references (%name;).
	// encoding/xml would not fetch or expand them; the file is refused so
	// that no later change could.
	ErrExternalDTD = errors.New("external DTDs and parameter entity references are not allowed")
	// ErrNestedZip reports a zip archive found where export.xml should be,
	// or an archive holding only archives: phr opens one zip level.
	ErrNestedZip = errors.New("a zip archive inside the zip archive is not opened (unzip the outer archive first)")
)

// Options understood by Import (importers.Input.Options).
const (
	// OptionAggregate set to "daily" combines high-frequency samples into
	// one Observation per type, source and day. "raw" (the default) keeps
	// every sample.
	OptionAggregate = "aggregate"
	// OptionClinicalRecords set to "beside" reads the clinical records of
	// an unpacked export from the clinical-records folder beside
	// export.xml: Input.Name must then be the path of export.xml on this
	// machine. Only a caller that imports local files (the CLI) may set
	// it, never one that imports uploads. A zip is always read whole.
	OptionClinicalRecords = "clinical-records"
)

type importer struct{}

// New returns the Apple Health importer.
func New() importers.Importer { return importer{} }

var _ importers.Importer = importer{}

func (importer) Name() string { return Name }

var zipMagic = []byte("PK\x03\x04")

// Detect claims an XML document whose root (or DOCTYPE) is HealthData, and a
// zip archive whose first entry lies under apple_health_export/.
func (importer) Detect(head []byte) bool {
	if len(head) > importers.DetectSize {
		head = head[:importers.DetectSize]
	}
	if bytes.HasPrefix(head, zipMagic) {
		return isAppleZip(head)
	}
	return isHealthDataXML(head)
}

// isAppleZip reads the first local file header: the name length is at
// offset 26 and the name starts at offset 30.
func isAppleZip(head []byte) bool {
	const prefix = "apple_health_export/"
	if len(head) < 30 {
		return false
	}
	n := int(binary.LittleEndian.Uint16(head[26:28]))
	if n < len(prefix) || 30+len(prefix) > len(head) {
		return false
	}
	return string(head[30:30+len(prefix)]) == prefix
}

// isHealthDataXML skips a BOM, white space, processing instructions and
// comments, then wants <!DOCTYPE HealthData or <HealthData.
func isHealthDataXML(head []byte) bool {
	b := bytes.TrimPrefix(head, []byte("\xef\xbb\xbf"))
	for {
		b = bytes.TrimLeft(b, " \t\r\n")
		switch {
		case bytes.HasPrefix(b, []byte("<?")):
			i := bytes.Index(b, []byte("?>"))
			if i < 0 {
				return false
			}
			b = b[i+2:]
		case bytes.HasPrefix(b, []byte("<!--")):
			i := bytes.Index(b[4:], []byte("-->"))
			if i < 0 {
				return false
			}
			b = b[4+i+3:]
		case bytes.HasPrefix(b, []byte("<!DOCTYPE")):
			return nameFollows(bytes.TrimLeft(b[len("<!DOCTYPE"):], " \t\r\n"), true)
		case bytes.HasPrefix(b, []byte("<")):
			return nameFollows(b[1:], false)
		default:
			return false
		}
	}
}

// nameFollows reports whether b starts with the name HealthData followed by
// a character that ends a name (or the end of the head, for a DOCTYPE).
func nameFollows(b []byte, doctype bool) bool {
	const name = "HealthData"
	if !bytes.HasPrefix(b, []byte(name)) {
		return false
	}
	if len(b) == len(name) {
		return doctype
	}
	switch b[len(name)] {
	case ' ', '\t', '\r', '\n', '>', '/', '[':
		return true
	}
	return false
}

// Import reads an export.xml or export.zip and sends one record per mapped
// item to sink.
func (importer) Import(ctx context.Context, in *importers.Input, sink importers.Sink) error {
	daily := false
	switch v := strings.ToLower(strings.TrimSpace(in.Options[OptionAggregate])); v {
	case "", "raw", "none":
	case "daily":
		daily = true
	default:
		return fmt.Errorf("%s: unknown %s option %q (use daily or raw)", Name, OptionAggregate, v)
	}
	prov := record.Provenance{
		Method:     record.MethodImported,
		Importer:   Name,
		File:       filepath.Base(in.Name),
		FileSHA256: in.SHA256,
		System:     System,
	}
	r := in.R
	if r == nil {
		if in.ReaderAt == nil || in.Size < 0 {
			return parseErr(in.Name, 0, 0, "", errors.New("no input"))
		}
		r = io.NewSectionReader(in.ReaderAt, 0, in.Size)
	}
	br := bufio.NewReaderSize(r, 64<<10)
	head, _ := br.Peek(len(zipMagic))
	if bytes.Equal(head, zipMagic) {
		if in.ReaderAt == nil || in.Size < 0 {
			return parseErr(in.Name, 0, 0, "", ErrNotSeekable)
		}
		return importZip(ctx, in, prov, daily, sink)
	}
	src := source{name: in.Name}
	switch v := in.Options[OptionClinicalRecords]; v {
	case "":
	case "beside":
		dir := filepath.Dir(in.Name)
		root, err := os.OpenRoot(dir)
		if err != nil {
			return fmt.Errorf("%s: the folder of %s: %w", Name, filepath.Base(in.Name), err)
		}
		defer root.Close()
		src.clinical, src.exportDir = dirClinical{root}, dir+string(filepath.Separator)
	default:
		return fmt.Errorf("%s: unknown %s option %q (use beside)", Name, OptionClinicalRecords, v)
	}
	return parse(ctx, br, src, prov, daily, sink)
}

// source names what is parsed: the export.xml's name for errors, and
// where its clinical records are (nil: not in this input).
type source struct {
	name      string
	clinical  clinicalFiles
	exportDir string // prefix of the clinical records' names in errors
}

func importZip(ctx context.Context, in *importers.Input, prov record.Provenance, daily bool, sink importers.Sink) error {
	// zip.NewReader holds every entry of the central directory in memory
	// before anything else can be checked: bound the bytes it may read.
	ra := &budgetReaderAt{r: in.ReaderAt, budget: MaxZipDirectorySize + 128<<10}
	zr, err := zip.NewReader(ra, in.Size)
	ra.budget = -1
	switch {
	case errors.Is(err, errBudget):
		return parseErr(in.Name, 0, 0, "", fmt.Errorf("%w: the zip's central directory is over %d MiB", ErrTooLarge, MaxZipDirectorySize>>20))
	case errors.Is(err, zip.ErrInsecurePath):
		// GODEBUG=zipinsecurepath=0: the archive was read; unsafe names
		// are ignored below, as they are otherwise.
	case err != nil:
		return parseErr(in.Name, 0, 0, "", fmt.Errorf("not a readable zip archive: %w", err))
	}
	if len(zr.File) > MaxZipEntries {
		return parseErr(in.Name, 0, 0, "", fmt.Errorf("%w: more than %d entries in the zip archive", ErrTooLarge, MaxZipEntries))
	}
	var f *zip.File
	unsafe, zips := 0, 0
	files := make(map[string]*zip.File, len(zr.File))
	for _, zf := range zr.File {
		name := strings.ReplaceAll(zf.Name, `\`, "/") // old Windows tools
		if unsafeName(name) {
			unsafe++
			continue
		}
		name = path.Clean(name)
		files[name] = zf
		if strings.HasSuffix(strings.ToLower(name), ".zip") {
			zips++
		}
		if name == ZipExportPath {
			f = zf
			continue
		}
		// Some tools re-zip the folder under another name: accept a single
		// */export.xml one level down as a fallback.
		if f == nil && path.Base(name) == "export.xml" && strings.Count(name, "/") == 1 {
			f = zf
		}
	}
	if unsafe > 0 {
		// Nothing is ever written to disk; the names are still a sign of a
		// crafted archive, and are neither used nor echoed.
		sink.Skip("", fmt.Sprintf("%d zip entries with unsafe names (absolute, or with ..) ignored", unsafe))
	}
	if f == nil {
		if zips > 0 {
			return parseErr(in.Name, 0, 0, "", ErrNestedZip)
		}
		return parseErr(in.Name, 0, 0, "", ErrNoExport)
	}
	entry := in.Name + "/" + f.Name
	if f.UncompressedSize64 > MaxExportSize {
		return parseErr(entry, 0, 0, "", fmt.Errorf("%w: export.xml is over %d GiB uncompressed", ErrTooLarge, MaxExportSize>>30))
	}
	// archive/zip fails a read past the declared size, so the declared
	// sizes are what is checked.
	if f.UncompressedSize64 > 1<<20 && f.UncompressedSize64/MaxCompressionRatio > f.CompressedSize64 {
		return parseErr(entry, 0, 0, "", fmt.Errorf("%w: export.xml expands more than %d times (a zip bomb?)", ErrTooLarge, MaxCompressionRatio))
	}
	rc, err := f.Open()
	if err != nil {
		return parseErr(in.Name, 0, 0, f.Name, fmt.Errorf("cannot open the zip entry: %w", err))
	}
	defer rc.Close()
	br := bufio.NewReaderSize(rc, 64<<10)
	if head, _ := br.Peek(len(zipMagic)); bytes.Equal(head, zipMagic) {
		return parseErr(entry, 0, 0, "", ErrNestedZip)
	}
	base := path.Dir(path.Clean(strings.ReplaceAll(f.Name, `\`, "/"))) + "/"
	src := source{name: entry, clinical: &zipClinical{base: base, files: files}, exportDir: in.Name + "/" + base}
	return parse(ctx, br, src, prov, daily, sink)
}

// unsafeName reports whether a zip entry name (with / separators) is
// absolute, has a drive letter, a NUL or a .. element: names an extractor
// could be tricked into writing outside its directory.
func unsafeName(name string) bool {
	if name == "" || strings.HasPrefix(name, "/") || strings.IndexByte(name, 0) >= 0 || len(name) > 1 && name[1] == ':' {
		return true
	}
	for el := range strings.SplitSeq(name, "/") {
		if el == ".." {
			return true
		}
	}
	return false
}

// errBudget is what budgetReaderAt returns past its budget.
var errBudget = errors.New("read budget exhausted")

// budgetReaderAt fails reads once budget bytes have been read (a negative
// budget is unlimited). It is used from one goroutine.
type budgetReaderAt struct {
	r      io.ReaderAt
	budget int64
	n      int64
}

func (b *budgetReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if b.budget >= 0 && b.n+int64(len(p)) > b.budget {
		return 0, errBudget
	}
	n, err := b.r.ReadAt(p, off)
	b.n += int64(n)
	return n, err
}

func parseErr(file string, line int, off int64, path string, err error) *importers.ParseError {
	return &importers.ParseError{ItemError: importers.ItemError{File: file, Line: line, Offset: off, Path: path, Err: err}}
}
