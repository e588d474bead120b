package main

import (
	"flag"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/phr-project/phr/pkg/kv"
)

// stats prints where a vault file's bytes go: per bucket, its keys and
// values, and the pages holding them with how full they are; then the
// free pages. It opens the file read-only and unseals nothing (it needs
// no key), so it shows only what anyone holding the file sees.
//
//	phr-scale stats vault.phr
func stats(args []string, w io.Writer) error {
	fs := flag.NewFlagSet("stats", flag.ExitOnError)
	fs.Parse(args)
	if fs.NArg() != 1 {
		return fmt.Errorf("give one vault file")
	}
	st, err := kv.BoltFileStats(fs.Arg(0))
	if err != nil {
		return err
	}
	mb := func(n int64) string { return fmt.Sprintf("%.1f", float64(n)/1e6) }
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "bucket\tkeys\tkey MB\tvalue MB\tleaf pages\toverflow\tbranch pages\tpages MB\tleaf fill %\t")
	for _, b := range st.Buckets {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%d\t%d\t%s\t%.1f\t\n", b.Name, b.Keys, mb(int64(b.KeyBytes)), mb(int64(b.ValueBytes)),
			b.LeafPages, b.LeafOverflow, b.BranchPages, mb(int64(b.PagesBytes)), 100*b.LeafFill)
	}
	fmt.Fprintf(tw, "free pages\t\t\t\t\t\t\t%s\t\t\n", mb(st.FreeBytes))
	fmt.Fprintf(tw, "high water mark\t\t\t\t\t\t\t%s\t\t\n", mb(st.HighWater))
	fmt.Fprintf(tw, "file\t\t\t\t\t\t\t%s\t\t\n", mb(st.Size))
	return tw.Flush()
}
