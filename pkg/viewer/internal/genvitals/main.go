// Command genvitals writes the viewer's vital-sign table,
// pkg/viewer/assets/js/vitals.json, from phr's Go table
// (record.VitalSigns). pkg/viewer runs it with go generate:
//
//	go generate ./pkg/viewer
package main

import (
	"fmt"
	"os"

	"github.com/phr-project/phr/pkg/viewer/internal/vitaljson"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: genvitals OUTPUT.json")
		os.Exit(2)
	}
	b, err := vitaljson.Encode()
	if err == nil {
		err = os.WriteFile(os.Args[1], b, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "genvitals:", err)
		os.Exit(1)
	}
}
