package vault

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"time"

	"filippo.io/age"
	"github.com/phr-project/phr/pkg/kv"
	"github.com/phr-project/phr/pkg/record"
)

// BackupFormat names the portable backup format (docs/backup.md): an age
// file whose plaintext is gzip-compressed JSON Lines: a header line, one
// line per record (the full envelope with its FHIR resource), one line per
// setting, and a trailer line with counts and a SHA-256 of every line
// before it, so that truncation and tampering inside the age layer are
// caught even by tools that do not check age's own authentication.
const BackupFormat = "phr-backup"

// BackupVersion is the version of the backup format this code writes.
const BackupVersion = 1

// BackupHeader is the first line of a backup.
type BackupHeader struct {
	Format     string    `json:"format"`
	Version    int       `json:"version"`
	VaultID    string    `json:"vaultId"`
	Created    time.Time `json:"created"`
	Tombstones bool      `json:"tombstones"`
}

// backupLine is every line after the header: exactly one field is set.
type backupLine struct {
	Record  *record.Record `json:"record,omitempty"`
	Setting *backupSetting `json:"setting,omitempty"`
	Trailer *BackupTrailer `json:"trailer,omitempty"`
}

type backupSetting struct {
	Name  string `json:"name"`
	Value []byte `json:"value"`
}

// BackupTrailer is the last line of a backup.
type BackupTrailer struct {
	Records  int    `json:"records"`
	Settings int    `json:"settings"`
	SHA256   string `json:"sha256"`
}

// ErrBackup reports a backup that is not readable: wrong key, truncated,
// tampered, or not a phr backup.
var ErrBackup = errors.New("backup is not readable")

// Backup writes a consistent snapshot of the vault (one read transaction,
// so writers can go on meanwhile) to w as an age file for recipients.
// Tombstones are included only if asked; an import still in progress (or
// interrupted and not rolled back yet) is left out whole. It returns the
// number of records written.
func (v *Vault) Backup(w io.Writer, recipients []age.Recipient, tombstones bool) (int, error) {
	aw, err := age.Encrypt(w, recipients...)
	if err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	zw := gzip.NewWriter(aw)
	bw := bufio.NewWriterSize(zw, 1<<16)
	sum := sha256.New()
	out := io.MultiWriter(bw, sum)
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(BackupHeader{Format: BackupFormat, Version: BackupVersion, VaultID: v.ID(), Created: v.now().UTC(), Tombstones: tombstones}); err != nil {
		return 0, err
	}
	var n, settings int
	err = v.view(func(tx kv.Tx) error {
		// An import in progress is not in a backup yet: neither its
		// records nor its marker.
		unfinished, err := v.unfinishedImports(tx)
		if err != nil {
			return err
		}
		rb := tx.Bucket([]byte{bucketRecords})
		scan := v.scanTrimmer()
		write := func(r *record.Record) error {
			if r.Deleted && !tombstones {
				return nil
			}
			r.Seq = 0 // sequences belong to a vault
			n++
			return enc.Encode(backupLine{Record: r})
		}
		lv, err := v.listing(tx)
		if err != nil {
			return err
		}
		if lv != nil {
			// Format 4: the records the listing index holds, each the
			// version it names (a value put back from an older copy of
			// the file fails the backup instead of entering it).
			err = lv.each(&Query{IncludeDeleted: tombstones, Oldest: true}, nil, func(e *rawEntry, in *entryInfo) (bool, error) {
				scan.tick(tx)
				if unfinished[string(keyOf(e.key.id))] {
					return true, nil
				}
				r, err := v.loadVersion(tx, rb, e.key.id, in.version)
				if err != nil {
					return false, err
				}
				return true, write(&r)
			})
		} else {
			err = rb.ForEach(func(k, _ []byte) error {
				scan.tick(tx)
				if unfinished[string(k)] {
					return nil
				}
				r, err := v.load(rb, k)
				if err != nil {
					return err
				}
				return write(&r)
			})
		}
		if err != nil {
			return err
		}
		sb := tx.Bucket([]byte{bucketSettings})
		return sb.ForEach(func(k, val []byte) error {
			if bytes.HasPrefix(k, []byte(importMarkPrefix)) {
				return nil
			}
			pt, err := v.keys.open(bucketSettings, k, val)
			if err != nil {
				return err
			}
			settings++
			return enc.Encode(backupLine{Setting: &backupSetting{Name: string(k), Value: pt}})
		})
	})
	if err != nil {
		return 0, err
	}
	trailer := BackupTrailer{Records: n, Settings: settings, SHA256: hex.EncodeToString(sum.Sum(nil))}
	if err := json.NewEncoder(bw).Encode(backupLine{Trailer: &trailer}); err != nil {
		return 0, err
	}
	for _, c := range []func() error{bw.Flush, zw.Close, aw.Close} {
		if err := c(); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// BackupReader reads a backup line by line, verifying it as it goes.
type BackupReader struct {
	Header  BackupHeader
	Trailer *BackupTrailer
	sum     hash.Hash
	br      *bufio.Reader
	records int
	sets    int
}

// maxBackupLine bounds one line of a backup (one record).
const maxBackupLine = 256 << 20

// OpenBackup decrypts a backup with identities and reads its header.
func OpenBackup(r io.Reader, identities ...age.Identity) (*BackupReader, error) {
	ar, err := age.Decrypt(r, identities...)
	if err != nil {
		var nm *age.NoIdentityMatchError
		if errors.As(err, &nm) {
			return nil, fmt.Errorf("%w: it was encrypted to another key or passphrase", ErrBackup)
		}
		return nil, fmt.Errorf("%w: %v", ErrBackup, err)
	}
	zr, err := gzip.NewReader(ar)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBackup, err)
	}
	b := &BackupReader{br: bufio.NewReaderSize(zr, 1<<16), sum: sha256.New()}
	line, err := b.line()
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(line, &b.Header); err != nil || b.Header.Format != BackupFormat {
		return nil, fmt.Errorf("%w: not a phr backup", ErrBackup)
	}
	b.sum.Write(line)
	if b.Header.Version > BackupVersion {
		return nil, fmt.Errorf("%w: made by a newer phr (backup version %d)", ErrBackup, b.Header.Version)
	}
	return b, nil
}

// line reads one line and adds it to the running hash.
func (b *BackupReader) line() ([]byte, error) {
	var line []byte
	for {
		chunk, err := b.br.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > maxBackupLine {
			return nil, fmt.Errorf("%w: line too long", ErrBackup)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("%w: truncated", ErrBackup)
			}
			return nil, fmt.Errorf("%w: %v", ErrBackup, err)
		}
		return line, nil
	}
}

// Next returns the next record or setting. At the end, after checking the
// trailer, it returns io.EOF.
func (b *BackupReader) Next() (*record.Record, *backupSetting, error) {
	if b.Trailer != nil {
		return nil, nil, io.EOF
	}
	line, err := b.line()
	if err != nil {
		return nil, nil, err
	}
	var l backupLine
	if err := json.Unmarshal(line, &l); err != nil {
		return nil, nil, fmt.Errorf("%w: malformed line", ErrBackup)
	}
	switch {
	case l.Trailer != nil:
		b.Trailer = l.Trailer
		if l.Trailer.Records != b.records || l.Trailer.Settings != b.sets || l.Trailer.SHA256 != hex.EncodeToString(b.sum.Sum(nil)) {
			return nil, nil, fmt.Errorf("%w: contents do not match the trailer", ErrBackup)
		}
		if _, err := b.br.ReadByte(); !errors.Is(err, io.EOF) {
			return nil, nil, fmt.Errorf("%w: data after the trailer", ErrBackup)
		}
		return nil, nil, io.EOF
	case l.Record != nil:
		b.sum.Write(line)
		b.records++
		if !record.ValidID(l.Record.ID) || (!l.Record.Deleted && len(l.Record.Resource) == 0) {
			return nil, nil, fmt.Errorf("%w: malformed record", ErrBackup)
		}
		return l.Record, nil, nil
	case l.Setting != nil:
		b.sum.Write(line)
		b.sets++
		return nil, l.Setting, nil
	}
	return nil, nil, fmt.Errorf("%w: malformed line", ErrBackup)
}

// VerifyBackup reads a whole backup and checks it; it returns the header
// and trailer.
func VerifyBackup(r io.Reader, identities ...age.Identity) (*BackupReader, error) {
	b, err := OpenBackup(r, identities...)
	if err != nil {
		return nil, err
	}
	for {
		_, _, err := b.Next()
		if errors.Is(err, io.EOF) {
			return b, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// Restore builds a new vault at path from a backup, with the given key
// slots. Records keep their IDs, versions, times and provenance; the new
// vault has its own ID and vault key. The vault is built under a temporary
// name and renamed into place only when the whole backup has been read and
// verified, so a bad backup leaves nothing behind. If path exists, Restore
// fails with ErrExists unless replace is true; then the old vault is kept
// beside it as path + ".before-restore-<time>" and its name is returned.
func Restore(r io.Reader, identities []age.Identity, path string, slots []SlotSpec, replace bool) (kept string, n int, err error) {
	if _, err := os.Lstat(path); err == nil && !replace {
		return "", 0, ErrExists
	}
	b, err := OpenBackup(r, identities...)
	if err != nil {
		return "", 0, err
	}
	tmp := filepath.Join(filepath.Dir(path), fmt.Sprintf(".phr-restore-%d", time.Now().UnixNano()))
	v, err := Create(tmp, slots, nil)
	if err != nil {
		return "", 0, err
	}
	fail := func(err error) (string, int, error) {
		v.Close()
		os.Remove(tmp)
		return "", 0, err
	}
	batch := make([]record.Record, 0, 10_000)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := v.restoreBatch(batch)
		n += len(batch)
		batch = batch[:0]
		return err
	}
	for {
		rec, set, err := b.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fail(err)
		}
		if set != nil {
			if err := v.SetSetting(set.Name, set.Value); err != nil {
				return fail(err)
			}
			continue
		}
		batch = append(batch, *rec)
		if len(batch) == cap(batch) {
			if err := flush(); err != nil {
				return fail(err)
			}
		}
	}
	if err := flush(); err != nil {
		return fail(err)
	}
	// The listing index, built once from all the records.
	if err := v.update(func(tx kv.Tx) error {
		return v.buildListing(tx, v.wh.list, 0, func(tx kv.Tx, nm *listMeta, first uint64) error {
			v.wh.list = nm
			return v.dropNodesExcept(tx, first, nm.next)
		})
	}); err != nil {
		return fail(err)
	}
	if err := v.Close(); err != nil {
		os.Remove(tmp)
		return "", 0, err
	}
	if _, err := os.Lstat(path); err == nil {
		kept = fmt.Sprintf("%s.before-restore-%s", path, time.Now().UTC().Format("20060102T150405Z"))
		if err := os.Rename(path, kept); err != nil {
			os.Remove(tmp)
			return "", 0, err
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return kept, 0, err
	}
	return kept, n, syncDir(filepath.Dir(path))
}

// restoreBatch writes records exactly as given (IDs, versions, times,
// tombstones), with fresh change sequences and indexes but for the
// listing index, which Restore builds at the end.
func (v *Vault) restoreBatch(recs []record.Record) error {
	defer v.meta.reset()
	return v.update(func(tx kv.Tx) error {
		rb, xb, fb, cb := v.buckets(tx)
		prep := make([]prepared, len(recs))
		for i := range recs {
			prep[i].rec = &recs[i]
		}
		if err := v.sampleBatch(tx, prep, nil); err != nil {
			return err
		}
		var ix indexWriter
		for i := range recs {
			r := &recs[i]
			k := keyOf(r.ID)
			if rb.Get(k) != nil {
				return fmt.Errorf("%w: record %s twice", ErrBackup, r.ID)
			}
			seq, err := cb.NextSequence()
			if err != nil {
				return err
			}
			r.Seq = seq
			pt, err := v.sealEnvelope(tx, r)
			if err != nil {
				return err
			}
			if err := v.putSealedNew(rb, bucketRecords, k, r.Version, pt); err != nil {
				return err
			}
			ix.add(v, v.keys, r, k)
			if err := cb.Put(seqKey(seq), k); err != nil {
				return err
			}
		}
		return ix.write(xb, fb, tx.Bucket([]byte{bucketIdentity}))
	})
}
