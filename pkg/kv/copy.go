package kv

import (
	"bytes"
	"errors"
	"fmt"
)

// Counts is what a store holds: buckets at every depth, keys with values,
// and the bytes of those values.
type Counts struct {
	Buckets int
	Keys    int
	Bytes   int64
}

// Count walks the whole store in one View.
func Count(db DB) (Counts, error) {
	var c Counts
	err := db.View(func(tx Tx) error {
		return tx.ForEach(func(_ []byte, b Bucket) error { return countBucket(b, &c) })
	})
	return c, err
}

func countBucket(b Bucket, c *Counts) error {
	c.Buckets++
	cur := b.Cursor()
	for k, v := cur.First(); k != nil; k, v = cur.Next() {
		if v == nil {
			if err := countBucket(b.Bucket(k), c); err != nil {
				return err
			}
			continue
		}
		c.Keys++
		c.Bytes += int64(len(v))
	}
	return nil
}

// ErrNotEmpty: Copy's destination already holds buckets.
var ErrNotEmpty = errors.New("kv: the destination is not empty")

// Copy copies every bucket, key, value and sequence of src into dst, which
// must be empty, in one View of src and one Update of dst: a failure
// leaves dst empty. The values move as they are (sealed), so the copy
// opens with the same keys as the original. It returns what it copied,
// counted again in dst afterwards; an error if that differs from src.
func Copy(dst, src DB) (Counts, error) {
	var copied Counts
	err := src.View(func(stx Tx) error {
		return dst.Update(func(dtx Tx) error {
			var exists bool
			if err := dtx.ForEach(func([]byte, Bucket) error { exists = true; return nil }); err != nil {
				return err
			}
			if exists {
				return ErrNotEmpty
			}
			copied = Counts{}
			return stx.ForEach(func(name []byte, sb Bucket) error {
				db, err := dtx.CreateBucket(name)
				if err != nil {
					return err
				}
				return copyBucket(db, sb, &copied)
			})
		})
	})
	if err != nil {
		return Counts{}, err
	}
	got, err := Count(dst)
	if err != nil {
		return copied, err
	}
	if got != copied {
		return copied, fmt.Errorf("kv: copied %+v but the destination holds %+v", copied, got)
	}
	return copied, nil
}

func copyBucket(dst, src Bucket, c *Counts) error {
	c.Buckets++
	if err := dst.SetSequence(src.Sequence()); err != nil {
		return err
	}
	cur := src.Cursor()
	for k, v := cur.First(); k != nil; k, v = cur.Next() {
		if v == nil {
			nb, err := dst.CreateBucket(k)
			if err != nil {
				return err
			}
			if err := copyBucket(nb, src.Bucket(k), c); err != nil {
				return err
			}
			continue
		}
		c.Keys++
		c.Bytes += int64(len(v))
		if err := dst.Put(bytes.Clone(k), bytes.Clone(v)); err != nil {
			return err
		}
	}
	return nil
}
