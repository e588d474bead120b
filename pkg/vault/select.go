package vault

import (
	"bytes"

	"github.com/phr-project/phr/pkg/kv"
	"github.com/phr-project/phr/pkg/record"
)

// kindSet is the set of kinds a query asks for.
func kindSet(kinds []string) map[string]bool {
	m := make(map[string]bool, len(kinds))
	for _, k := range kinds {
		m[k] = true
	}
	return m
}

// selectRecords calls fn with every record that q's kinds select and
// match accepts. Without kinds it reads every record, and checks them
// against the authenticated head on the way. With kinds it reads the
// kind index, which is not authenticated, so it checks each unsealed
// record's own kind against the query (an index key copied under another
// kind's prefix selects nothing; Check reports it) and takes each record
// once.
func (v *Vault) selectRecords(q Query, match func(*record.Record) bool, fn func(record.Record)) error {
	return v.view(func(tx kv.Tx) error {
		rb := tx.Bucket([]byte{bucketRecords})
		if len(q.Kinds) == 0 {
			scan := recordsScan{keys: v.keys}
			if err := rb.ForEach(func(k, sealed []byte) error {
				scan.add(k, sealed)
				r, err := v.load(rb, k)
				if err != nil {
					return err
				}
				if match(&r) {
					fn(r)
				}
				return nil
			}); err != nil {
				return err
			}
			return v.checkScan(tx, &scan)
		}
		wanted := kindSet(q.Kinds)
		taken := map[string]bool{}
		c := tx.Bucket([]byte{bucketIndex}).Cursor()
		for kind := range wanted {
			prefix := v.keys.kindPrefix(kind)
			for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
				key := k[len(prefix):]
				if taken[string(key)] {
					continue
				}
				r, err := v.load(rb, key)
				if err != nil {
					return err
				}
				if !wanted[r.Kind] || r.Deleted {
					continue // a steered index entry, or a stale one
				}
				taken[string(key)] = true
				if match(&r) {
					fn(r)
				}
			}
		}
		return nil
	})
}
