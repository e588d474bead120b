package kv_test

import (
	"encoding/binary"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/phr-project/phr/pkg/kv"
)

// BenchmarkBoltWrapper compares the wrapper with bbolt called directly:
// a View that reads 100 keys by Get and walks 100 with a cursor.
func BenchmarkBoltWrapper(b *testing.B) {
	db := openBoltSpec(b, filepath.Join(b.TempDir(), "b.db"))
	err := db.Update(func(tx kv.Tx) error {
		bk, err := tx.CreateBucket([]byte("b"))
		if err != nil {
			return err
		}
		for i := range 1000 {
			if err := bk.Put(binary.BigEndian.AppendUint32(nil, uint32(i)), make([]byte, 200)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("bbolt", func(b *testing.B) {
		for b.Loop() {
			db.Bolt().View(func(tx *bolt.Tx) error {
				bk := tx.Bucket([]byte("b"))
				for i := range 100 {
					bk.Get(binary.BigEndian.AppendUint32(nil, uint32(i*7)))
				}
				c := bk.Cursor()
				n := 0
				for k, _ := c.Seek([]byte{0, 0, 1}); k != nil && n < 100; k, _ = c.Next() {
					n++
				}
				return nil
			})
		}
	})
	b.Run("kv", func(b *testing.B) {
		for b.Loop() {
			db.View(func(tx kv.Tx) error {
				bk := tx.Bucket([]byte("b"))
				for i := range 100 {
					bk.Get(binary.BigEndian.AppendUint32(nil, uint32(i*7)))
				}
				c := bk.Cursor()
				n := 0
				for k, _ := c.Seek([]byte{0, 0, 1}); k != nil && n < 100; k, _ = c.Next() {
					n++
				}
				return nil
			})
		}
	})
}
