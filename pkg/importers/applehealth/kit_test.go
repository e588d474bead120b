package applehealth

import (
	"testing"

	"github.com/phr-project/phr/pkg/importers/importertest"
)

// TestKit runs the importer conformance checks (importertest.Run).
func TestKit(t *testing.T) {
	bad := `<HealthData>
<Record type="HKQuantityTypeIdentifierHeartRate" sourceName="Secretname" unit="count/min" startDate="2020-01-01 10:00:00 +0000" endDate="2020-01-01 10:00:00 +0000" value="Secretvalue"/>
<Record type="HKQuantityTypeIdentifierHeartRate" sourceName="Watch" unit="count/min" startDate="Secretdate" value="72"/>
</HealthData>`
	importertest.Run(t, New(), importertest.Corpus{
		Files: []importertest.Sample{
			{Path: "apple-health/ashtom-hkimport/Data/export.xml"},
			{Path: "apple-health/dogsheep-healthkit-to-sqlite/tests/export.xml"},
			{Path: "apple-health/dogsheep-healthkit-to-sqlite/tests/export.xml", Name: "daily", Options: map[string]string{OptionAggregate: "daily"}},
			{Name: "export.zip", Data: zipDir(t, dogsheepZip)},
			{Name: "export.zip with clinical records", Data: clinicalZip(t, false)},
		},
		Bad: []importertest.Bad{
			{Name: "items.xml", Data: []byte(bad), Secrets: []string{"Secretname", "Secretvalue", "Secretdate"}},
			{Name: "truncated.xml", Data: []byte("<HealthData>\n<Record type=\"X\" sourceName=\"Secretname\">\n<MetadataEntry key=\"k\" value=\"Secretvalue\"/>"), Secrets: []string{"Secretname", "Secretvalue"}},
			{Name: "mismatched.xml", Data: []byte("<HealthData>\n<Record sourceName=\"Secretname\"></Workout>\n</HealthData>"), Secrets: []string{"Secretname"}},
		},
		Limits: []importertest.Limit{
			{Name: "2 GiB attribute", Is: ErrTooLarge, MaxRead: MaxTokenBytes + 256<<10, Input: func() *importertest.LazyReader {
				return importertest.Lazy(importertest.Once("<HealthData>\n<Record value=\""), importertest.Fill("1", 2<<30))
			}},
		},
	})
}

// TestExpectations checks the real exports of testdata/expect against what
// a person read in them (importertest.Expectations).
func TestExpectations(t *testing.T) {
	importertest.CheckExpectations(t, "testdata/expect", New())
}
