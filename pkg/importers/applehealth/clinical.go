package applehealth

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/phr-project/phr/pkg/importers"
	"github.com/phr-project/phr/pkg/importers/fhir"
)

// Skip reasons of clinical records.
const (
	skipClinicalAbsent  = "clinical record: its FHIR file (clinical-records/) is not in this input; import export.zip to read it"
	skipClinicalMissing = "clinical record: its FHIR file is missing from the export"
)

// clinicalFiles opens the FHIR files of clinical records, by their path in
// the export folder ("clinical-records/Observation-1.json"). open returns
// an error wrapping fs.ErrNotExist when the export has no such file.
type clinicalFiles interface {
	open(rel string) (io.ReadCloser, error)
}

// zipClinical reads clinical records from export.zip: entries under the
// folder that holds export.xml.
type zipClinical struct {
	base  string               // "apple_health_export/"
	files map[string]*zip.File // by cleaned name
}

func (z *zipClinical) open(rel string) (io.ReadCloser, error) {
	f := z.files[z.base+rel]
	if f == nil {
		return nil, fs.ErrNotExist
	}
	// archive/zip fails a read past the declared size, so the declared
	// sizes are what is checked, as for export.xml.
	if f.UncompressedSize64 > fhir.MaxResourceSize {
		return nil, fmt.Errorf("%w: a clinical record over %d MiB", ErrTooLarge, fhir.MaxResourceSize>>20)
	}
	if f.UncompressedSize64 > 1<<20 && f.UncompressedSize64/MaxCompressionRatio > f.CompressedSize64 {
		return nil, fmt.Errorf("%w: a clinical record expands more than %d times (a zip bomb?)", ErrTooLarge, MaxCompressionRatio)
	}
	return f.Open()
}

// dirClinical reads clinical records from the folder of an unpacked
// export, through an os.Root: no path can leave the folder.
type dirClinical struct{ root *os.Root }

func (d dirClinical) open(rel string) (io.ReadCloser, error) {
	f, err := d.root.Open(rel)
	if err != nil {
		return nil, err
	}
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() || st.Size() > fhir.MaxResourceSize {
		f.Close()
		if err == nil && st.Mode().IsRegular() {
			err = fmt.Errorf("%w: a clinical record over %d MiB", ErrTooLarge, fhir.MaxResourceSize>>20)
		} else if err == nil {
			err = fs.ErrNotExist
		}
		return nil, err
	}
	return f, nil
}

// clinicalRecord imports the FHIR file a <ClinicalRecord> points to
// (resourceFilePath), through the FHIR importer's code, with the
// provenance of this export and the record's sourceName (the provider's
// name) as the system.
func (p *parser) clinicalRecord(n *node, line int) error {
	if v := strings.TrimSpace(n.attr("fhirVersion")); v != "" && !strings.HasPrefix(v, "4.") {
		p.sink.Skip("", "clinical record in FHIR "+fhirVersionName(v)+": phr imports R4 only")
		return nil
	}
	rel, ok := clinicalPath(n.attr("resourceFilePath"))
	if !ok {
		p.fail(line, "ClinicalRecord/@resourceFilePath", errors.New("missing, or not a path inside the export"))
		return nil
	}
	if p.clinical == nil {
		p.sink.Skip("", skipClinicalAbsent)
		return nil
	}
	rc, err := p.clinical.open(rel)
	if errors.Is(err, fs.ErrNotExist) {
		p.sink.Skip("", skipClinicalMissing)
		return nil
	}
	if err != nil {
		p.fail(line, "ClinicalRecord/@resourceFilePath", fmt.Errorf("cannot read the clinical record: %w", err))
		return nil
	}
	data, err := io.ReadAll(io.LimitReader(rc, fhir.MaxResourceSize+1))
	rc.Close()
	switch {
	case err != nil:
		p.fail(line, "ClinicalRecord/@resourceFilePath", fmt.Errorf("cannot read the clinical record: %w", err))
		return nil
	case len(data) > fhir.MaxResourceSize:
		p.fail(line, "ClinicalRecord/@resourceFilePath", fmt.Errorf("%w: a clinical record over %d MiB", ErrTooLarge, fhir.MaxResourceSize>>20))
		return nil
	}
	prov := p.prov
	prov.System = clipText(strings.TrimSpace(n.attr("sourceName")), 200)
	if prov.System == "" {
		prov.System = System
	}
	err = fhir.ImportJSON(p.ctx, p.exportDir+rel, data, prov, p.sink)
	var pe *importers.ParseError
	if errors.As(err, &pe) {
		// One unreadable clinical record fails alone, as a bad sample does.
		p.sink.Fail(&pe.ItemError)
		return nil
	}
	return err
}

// clinicalPath turns resourceFilePath ("/clinical-records/X.json") into a
// clean path relative to the export folder; ok is false for an empty path
// or one that leaves the folder.
func clinicalPath(s string) (string, bool) {
	s = strings.TrimLeft(strings.ReplaceAll(strings.TrimSpace(s), `\`, "/"), "/")
	if s == "" || strings.IndexByte(s, 0) >= 0 || len(s) > 1024 {
		return "", false
	}
	for el := range strings.SplitSeq(s, "/") {
		if el == ".." {
			return "", false
		}
	}
	return path.Clean(s), true
}

// fhirVersionName names a FHIR version for a skip reason, without echoing
// anything that is not a version number.
func fhirVersionName(v string) string {
	if len(v) > 12 || strings.Trim(v, "0123456789.") != "" {
		return "other than R4"
	}
	switch {
	case strings.HasPrefix(v, "1.0."):
		return v + " (DSTU2)"
	case strings.HasPrefix(v, "3.0."):
		return v + " (STU3)"
	}
	return v
}
