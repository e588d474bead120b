package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	bolt "go.etcd.io/bbolt"
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
	path := fs.Arg(0)
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		return err
	}
	defer db.Close()
	mb := func(n int) string { return fmt.Sprintf("%.1f", float64(n)/1e6) }
	return db.View(func(tx *bolt.Tx) error {
		ps := db.Info().PageSize
		tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "bucket\tkeys\tkey MB\tvalue MB\tleaf pages\toverflow\tbranch pages\tpages MB\tleaf fill %\t")
		err := tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			var keyB, valB int
			b.ForEach(func(k, v []byte) error {
				keyB += len(k)
				valB += len(v)
				return nil
			})
			s := b.Stats()
			pages := s.LeafPageN + s.LeafOverflowN + s.BranchPageN + s.BranchOverflowN
			fill := 0.0
			if alloc := (s.LeafPageN + s.LeafOverflowN) * ps; alloc > 0 {
				fill = 100 * float64(s.LeafInuse) / float64(alloc)
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%d\t%d\t%s\t%.1f\t\n", name, s.KeyN, mb(keyB), mb(valB),
				s.LeafPageN, s.LeafOverflowN, s.BranchPageN, mb(pages*ps), fill)
			return nil
		})
		if err != nil {
			return err
		}
		st := db.Stats()
		fmt.Fprintf(tw, "free pages\t\t\t\t\t\t\t%s\t\t\n", mb((st.FreePageN+st.PendingPageN)*ps))
		fmt.Fprintf(tw, "high water mark\t\t\t\t\t\t\t%s\t\t\n", mb(int(tx.Size())))
		fmt.Fprintf(tw, "file\t\t\t\t\t\t\t%s\t\t\n", mb(int(fi.Size())))
		return tw.Flush()
	})
}
