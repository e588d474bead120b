package crash

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"filippo.io/age"
	"github.com/phr-project/phr/pkg/kv"
	"github.com/phr-project/phr/pkg/record"
	"github.com/phr-project/phr/pkg/vault"
)

// state is what a vault holds, read with the vault package directly.
type state struct {
	// bySHA counts live records per imported file (the SHA-256 in their
	// provenance) and resource type. Records not imported from a file are
	// under "".
	bySHA map[string]map[string]int
	// keys counts live records per identity: the SHA-256 of the record's
	// dedup input (record.FingerprintInput) and original id, or of its
	// resource if it has none. Two records with one key are the same
	// record stored twice.
	keys map[string]int
	// records are the live records by ID.
	records map[string]record.Record
	// interrupted is how many imports a crash interrupted are left to
	// roll back.
	interrupted int
	// problems are what Vault.Check found, if it ran.
	problems []vault.Problem
}

// readState opens the vault read-only (no rollback), checks it if check
// is true, and reads every record.
func readState(path string, ids []age.Identity, check bool) (*state, error) {
	v, err := vault.Open(path, vault.Identities(ids...), &vault.Options{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("the vault does not open: %w", err)
	}
	defer v.Close()
	return stateOf(v, check)
}

// readStateIn is readState of a vault in a store (a PostgreSQL
// namespace).
func readStateIn(db kv.DB, ids []age.Identity, check bool) (*state, error) {
	v, err := vault.OpenIn(db, vault.Identities(ids...), &vault.Options{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("the vault does not open: %w", err)
	}
	defer v.Close()
	return stateOf(v, check)
}

func stateOf(v *vault.Vault, check bool) (*state, error) {
	var err error
	st := &state{bySHA: map[string]map[string]int{}, keys: map[string]int{}, records: map[string]record.Record{}}
	if st.interrupted, err = v.InterruptedImports(); err != nil {
		return nil, err
	}
	if check {
		rep, err := v.Check(false)
		if err != nil {
			return nil, fmt.Errorf("check: %w", err)
		}
		st.problems = rep.Problems
	}
	recs, err := v.List(vault.Query{})
	if err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	for _, r := range recs {
		sha := r.Provenance.FileSHA256
		if st.bySHA[sha] == nil {
			st.bySHA[sha] = map[string]int{}
		}
		st.bySHA[sha][r.ResourceType]++
		st.keys[identity(&r)]++
		st.records[r.ID] = r
	}
	return st, nil
}

func identity(r *record.Record) string {
	in := record.FingerprintInput(r)
	if in == nil {
		s := sha256.Sum256(r.Resource)
		return "r" + hex.EncodeToString(s[:])
	}
	// Equal resources of one file that the file tells apart by id are
	// kept as two records (vault.Add): the id is part of what one is.
	s := sha256.Sum256(append(append(in, 0), r.Provenance.OriginalID...))
	return "f" + hex.EncodeToString(s[:])
}

// duplicates counts records stored more than once.
func (s *state) duplicates() int {
	n := 0
	for _, c := range s.keys {
		n += c - 1
	}
	return n
}

// count is the number of live records of one file.
func (s *state) count(sha string) int {
	n := 0
	for _, c := range s.bySHA[sha] {
		n += c
	}
	return n
}

// sameFile reports whether a file's records are the same in two states,
// type by type.
func sameFile(a, b *state, sha string) bool {
	return maps.Equal(a.bySHA[sha], b.bySHA[sha])
}

// diffKeys describes how two states' record identities differ (without
// any content: counts only).
func diffKeys(got, want *state) string {
	var missing, extra, twice int
	for k, n := range want.keys {
		if got.keys[k] < n {
			missing += n - got.keys[k]
		}
	}
	for k, n := range got.keys {
		if n > want.keys[k] {
			extra += n - want.keys[k]
		}
		if n > 1 {
			twice++
		}
	}
	if missing == 0 && extra == 0 {
		return ""
	}
	return fmt.Sprintf("%d records missing, %d extra (%d stored more than once)", missing, extra, twice)
}

// problemList formats Check's problems on one line.
func problemList(ps []vault.Problem) string {
	var out []string
	for _, p := range ps {
		out = append(out, p.What)
	}
	return strings.Join(out, "; ")
}

// readIdentities reads the age identity file phr init wrote.
func readIdentities(path string) ([]age.Identity, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return age.ParseIdentities(f)
}

// sortedKeys returns a map's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
