// Command gencvx writes the viewer's table of CVX vaccine names,
// pkg/viewer/assets/js/cvx.mjs, from phr's CVX table
// (terminology.Names(terminology.CVX)). pkg/viewer runs it with go
// generate:
//
//	go generate ./pkg/viewer
package main

import (
	"fmt"
	"os"

	"github.com/phr-project/phr/pkg/viewer/internal/cvxjs"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: gencvx OUTPUT.mjs")
		os.Exit(2)
	}
	b, err := cvxjs.Encode()
	if err == nil {
		err = os.WriteFile(os.Args[1], b, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gencvx:", err)
		os.Exit(1)
	}
}
