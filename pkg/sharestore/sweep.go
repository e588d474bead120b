package sharestore

import (
	"bytes"
	"slices"
	"time"

	"github.com/phr-project/phr/pkg/kv"
)

// sweepChunk bounds the shares one Sweep transaction changes, so that a
// sweep never holds the write lock for long.
const sweepChunk = 256

// SweepResult counts what Sweep did.
type SweepResult struct {
	Purged  int // shares whose ciphertext was deleted
	Deleted int // shares deleted with their logs (retention over)
}

// Sweep deletes what is no longer needed at now:
//
//   - the ciphertext of shares that can no longer be served: expired,
//     revoked (Revoke already deletes it), and used up or locked once an
//     hour has passed since the last granted access (its location tokens
//     may still be in use until then);
//   - the metadata and access log of shares purged longer ago than the
//     retention period (Options.Retention).
//
// phrd calls it periodically. It works in short transactions.
func (s *Store) Sweep(now time.Time) (SweepResult, error) {
	var res SweepResult
	type job struct {
		lk     []byte
		delete bool
	}
	var jobs []job
	err := s.db.View(func(tx kv.Tx) error {
		return tx.Bucket(bucketShares).ForEach(func(k, v []byte) error {
			r, err := getRecord(tx, k)
			if err != nil {
				return nil // unreadable: leave it for a human
			}
			switch {
			case !r.PurgedAt.IsZero():
				if now.Sub(r.PurgedAt) > s.retention {
					jobs = append(jobs, job{lk: bytes.Clone(k), delete: true})
				}
			case s.purgeable(&r, now):
				jobs = append(jobs, job{lk: bytes.Clone(k)})
			}
			return nil
		})
	})
	if err != nil {
		return res, err
	}
	for chunk := range slices.Chunk(jobs, sweepChunk) {
		err := s.db.Update(func(tx kv.Tx) error {
			for _, j := range chunk {
				r, err := getRecord(tx, j.lk)
				if err != nil {
					continue // gone meanwhile
				}
				if j.delete {
					if err := deleteShare(tx, j.lk, &r); err != nil {
						return err
					}
					res.Deleted++
					continue
				}
				if !r.PurgedAt.IsZero() || !s.purgeable(&r, now) {
					continue
				}
				if err := purgeFiles(tx, j.lk, &r, now); err != nil {
					return err
				}
				if err := putRecord(tx, j.lk, &r); err != nil {
					return err
				}
				res.Purged++
			}
			return nil
		})
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

// purgeable reports whether r's ciphertext can go: r cannot be served,
// and no location token granted by its last access can still be valid.
func (s *Store) purgeable(r *shareRecord, now time.Time) bool {
	switch r.unavailable(now) {
	case "":
		return false
	case OutcomeExpired, OutcomeRevoked:
		return true // FileByToken refuses these anyway
	}
	return r.LastUsed.IsZero() || now.Sub(r.LastUsed) > MaxTokenLifetime
}

func deleteShare(tx kv.Tx, lk []byte, r *shareRecord) error {
	if err := purgeFiles(tx, lk, r, time.Time{}); err != nil {
		return err
	}
	lb := tx.Bucket(bucketLogs)
	c := lb.Cursor()
	var keys [][]byte
	for k, _ := c.Seek(lk); k != nil && bytes.HasPrefix(k, lk); k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	for _, k := range keys {
		if err := lb.Delete(k); err != nil {
			return err
		}
	}
	if err := tx.Bucket(bucketOwners).Delete(append(slices.Clip(r.Owner), lk...)); err != nil {
		return err
	}
	return tx.Bucket(bucketShares).Delete(lk)
}
