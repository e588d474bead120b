package sharestore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/phr-project/phr/pkg/kv"
)

// RekeyResult counts what Rekey did.
type RekeyResult struct {
	Shares  int // shares moved under the new secret
	Dropped int // shares whose owner was not among the owners given: left out
}

// rekeyBatch bounds the shares one transaction of the new file takes.
const rekeyBatch = 64

// Rekey rewrites the store file at path from oldSecret to newSecret: every
// lookup key, owner tag and sealed value (ids, labels, access log entries)
// is made again under the new secret, and the ciphertext files move with
// their shares. Manifest ids stay the same, so every link keeps working;
// location tokens handed out before stop working (a receiver asks for the
// manifest again). Owner tags are HMACs, so the owners cannot be read
// back: owners lists every owner the caller knows (phrd: its account ids),
// and a share whose owner is not among them is left out (its account is
// gone) and counted.
//
// The new store is written to a new file beside path, synced, and renamed
// over path: a crash leaves either the old file (which oldSecret still
// opens, so Rekey can run again) or the new one, never a mix, and the new
// file holds nothing the old secret opens (no freed page of the old file
// comes along). The store must not be open.
func Rekey(path string, oldSecret, newSecret []byte, owners []string, opts *Options) (RekeyResult, error) {
	var res RekeyResult
	var o Options
	if opts != nil {
		o = *opts
	}
	if bytes.Equal(oldSecret, newSecret) {
		return res, fmt.Errorf("%w: the new secret is the old one", ErrInvalid)
	}
	oo := o
	oo.Secret = oldSecret
	old, err := Open(path, &oo)
	if err != nil {
		return res, err
	}
	defer old.Close()
	tmp := path + ".rekey"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return res, err
	}
	no := o
	no.Secret = newSecret
	nu, err := Open(tmp, &no)
	if err != nil {
		return res, err
	}
	defer func() {
		if nu != nil {
			nu.Close()
			os.Remove(tmp)
		}
	}()
	// Pending log entries of the old store go to its file first.
	if err := old.flushPending(); err != nil {
		return res, err
	}
	byTag := make(map[string]string, len(owners))
	for _, ow := range owners {
		byTag[string(old.ownerTag(ow))] = ow
	}

	// One moved share: its record, files and log, under the new keys.
	type pair struct{ k, v []byte }
	type moved struct {
		lk, owner []byte
		rec       []byte
		files     []pair
		logs      []pair
	}
	var batch []moved
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := nu.db.Update(func(tx kv.Tx) error {
			sb, ob, fb, lb := tx.Bucket(bucketShares), tx.Bucket(bucketOwners), tx.Bucket(bucketFiles), tx.Bucket(bucketLogs)
			for _, m := range batch {
				if err := sb.Put(m.lk, m.rec); err != nil {
					return err
				}
				if err := ob.Put(append(slices.Clip(m.owner), m.lk...), nil); err != nil {
					return err
				}
				for _, f := range m.files {
					if err := fb.Put(f.k, f.v); err != nil {
						return err
					}
				}
				for _, l := range m.logs {
					if err := lb.Put(l.k, l.v); err != nil {
						return err
					}
				}
			}
			return nil
		})
		batch = batch[:0]
		return err
	}
	err = old.db.View(func(tx kv.Tx) error {
		fb, lb := tx.Bucket(bucketFiles), tx.Bucket(bucketLogs)
		c := tx.Bucket(bucketShares).Cursor()
		for lk, _ := c.First(); lk != nil; lk, _ = c.Next() {
			r, err := getRecord(tx, lk)
			if err != nil {
				return err
			}
			part, err := old.openPart(lk, &r)
			if err != nil {
				return err
			}
			owner, ok := byTag[string(r.Owner)]
			if !ok {
				res.Dropped++
				continue
			}
			m := moved{lk: nu.lookupKey(part.ID), owner: nu.ownerTag(owner)}
			pt, err := json.Marshal(part)
			if err != nil {
				return err
			}
			r.Sealed = nu.seal("share", m.lk, pt)
			r.Owner = m.owner
			if m.rec, err = json.Marshal(&r); err != nil {
				return err
			}
			if r.PurgedAt.IsZero() {
				for _, f := range r.Files {
					raw, err := fileIDEnc.DecodeString(f.ID)
					if err != nil {
						return fmt.Errorf("%w: file id", ErrCorrupt)
					}
					v := fb.Get(append(slices.Clip(lk), raw...))
					if v == nil {
						return fmt.Errorf("%w: a file of a share is missing", ErrCorrupt)
					}
					m.files = append(m.files, pair{append(slices.Clip(m.lk), raw...), bytes.Clone(v)})
				}
			}
			lc := lb.Cursor()
			for k, v := lc.Seek(lk); k != nil && bytes.HasPrefix(k, lk); k, v = lc.Next() {
				pt, err := old.unseal("log", k, v)
				if err != nil {
					return err
				}
				nk := append(slices.Clip(m.lk), k[len(lk):]...)
				m.logs = append(m.logs, pair{nk, nu.seal("log", nk, pt)})
			}
			batch = append(batch, m)
			res.Shares++
			if len(batch) >= rekeyBatch {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		return flush()
	})
	if err != nil {
		return res, err
	}
	if err := nu.Close(); err != nil {
		return res, err
	}
	nu = nil
	if err := old.Close(); err != nil {
		os.Remove(tmp)
		return res, err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return res, err
	}
	return res, syncDir(filepath.Dir(path))
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
