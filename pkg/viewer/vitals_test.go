package viewer

import (
	"bytes"
	"os"
	"testing"

	"github.com/phr-project/phr/pkg/viewer/internal/vitaljson"
)

// TestVitalsJSONIsGenerated fails when the viewer's vital-sign table,
// assets/js/vitals.json, is not what phr's Go table (record.VitalSigns)
// generates: the two cannot drift apart. The file on disk and the one
// embedded and served are both checked.
func TestVitalsJSONIsGenerated(t *testing.T) {
	want, err := vitaljson.Encode()
	if err != nil {
		t.Fatal(err)
	}
	onDisk, err := os.ReadFile("assets/js/vitals.json")
	if err != nil {
		t.Fatal(err)
	}
	for what, got := range map[string][]byte{"assets/js/vitals.json": onDisk, "the served " + ModuleDir + "vitals.json": routes[ModuleDir+"vitals.json"].Body} {
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from record.VitalSigns(): run go generate ./pkg/viewer", what)
		}
	}
}
