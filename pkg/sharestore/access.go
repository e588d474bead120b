package sharestore

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/phr-project/phr/pkg/kv"
	"github.com/phr-project/phr/pkg/share"
)

// Access is the manifest access step: it decides whether the request for
// share id by recipient, with passcode, may have the share's files now,
// and records the attempt in the share's access log.
//
// It returns the share (with its file list) when the request is granted,
// after counting one use. Otherwise:
//
//   - ErrNotFound for an unknown id;
//   - an *UnavailableError (matching ErrNotFound) when the share is
//     revoked, expired, used up or locked;
//   - a *PasscodeError for a wrong passcode (one attempt of the lifetime
//     budget is spent; at 0 the share locks for good) or a missing one
//     (nothing is spent);
//   - ErrBusy when Options.MaxChecksPerShare passcode checks of this
//     share are already in flight, and the error of Options.Gate when no
//     slot for the check came free (nothing is spent either way).
//
// # Concurrency
//
// The passcode check (scrypt, tens of milliseconds) runs outside any
// transaction, yet the budget of wrong passcodes is never exceeded:
//
//  1. a short write transaction re-checks the share and reserves one
//     attempt (remaining-1) before the passcode is checked; with no
//     attempt left the request is refused as locked;
//  2. the passcode is checked with no transaction open;
//  3. a second short transaction either keeps the attempt spent (wrong
//     passcode) or gives it back (right passcode) and counts the use.
//
// N concurrent guesses therefore reserve at most the remaining budget;
// the others find the share locked. A crash between steps 1 and 3 only
// loses a reserved attempt, never grants one. A right passcode racing
// with wrong ones may see the share locked while their reservations are
// in flight: it errs on the side of refusing.
//
// # Memory
//
// Each passcode check is an scrypt of tens of MiB. Before step 1 a
// request takes one of the share's check slots (at most
// Options.MaxChecksPerShare at once, else ErrBusy at once) and then one
// slot of Options.Gate, which it holds until the check is done; so a
// flood of requests, right passcodes or wrong, costs at most the gate's
// slots' worth of memory, whatever their number.
func (s *Store) Access(ctx context.Context, id, recipient, passcode string, now time.Time) (Share, error) {
	return s.access(ctx, id, recipient, passcode, now, false)
}

// AccessDirect is Access for the U flag's direct GET: it grants only
// shares with flag U (which never have a passcode); for any other share it
// returns ErrNotFound without counting or logging anything.
func (s *Store) AccessDirect(id, recipient string, now time.Time) (Share, error) {
	return s.access(context.Background(), id, recipient, "", now, true)
}

func (s *Store) access(ctx context.Context, id, recipient, passcode string, now time.Time, direct bool) (Share, error) {
	recipient = CleanRecipient(recipient)
	lk := s.lookupKey(id)

	// Unknown ids and known but unservable ones take the same path: one
	// read transaction. Denials are logged in the background so that a
	// dead link costs no write (and no fsync) in the request.
	var rec shareRecord
	err := s.db.View(func(tx kv.Tx) error {
		var err error
		rec, err = getRecord(tx, lk)
		return err
	})
	if err != nil {
		return Share{}, err
	}
	if direct && !strings.Contains(rec.Flag, share.FlagDirect) {
		return Share{}, ErrNotFound
	}
	if o := rec.unavailable(now); o != "" {
		s.logLater(lk, now, recipient, o)
		return Share{}, &UnavailableError{Reason: o}
	}

	if rec.Hash == "" {
		rec, deny, err := s.ifAvailable(lk, now, func(tx kv.Tx, r *shareRecord) error {
			r.Uses++
			r.LastUsed = now.UTC()
			return s.appendLog(tx, lk, r, now, recipient, OutcomeOK)
		})
		return s.grant(lk, &rec, now, recipient, deny, err)
	}

	if passcode == "" {
		// Nothing to check: refuse without spending an attempt.
		return Share{}, &PasscodeError{Remaining: max(rec.Remaining, 0)}
	}

	// 0. A check slot of this share, then one of the gate.
	done, err := s.checkSlot(lk)
	if err != nil {
		return Share{}, err
	}
	defer done()
	if s.gate != nil {
		if err := s.gate.Acquire(ctx); err != nil {
			return Share{}, err
		}
	}
	gateHeld := s.gate != nil
	releaseGate := func() {
		if gateHeld {
			gateHeld = false
			s.gate.Release()
		}
	}
	defer releaseGate()

	// 1. Reserve an attempt.
	rec, deny, err := s.ifAvailable(lk, now, func(tx kv.Tx, r *shareRecord) error {
		r.Remaining--
		return nil
	})
	if err != nil || deny != "" {
		return s.grant(lk, &rec, now, recipient, deny, err)
	}

	// 2. Check the passcode outside any transaction.
	ok := share.CheckPasscode(rec.Hash, passcode)
	releaseGate()

	// 3. Settle the reservation.
	remaining := 0
	err = s.batchShare(lk, func(tx kv.Tx) error {
		deny, remaining = "", 0
		r, err := getRecord(tx, lk)
		if err != nil {
			return err
		}
		if !ok {
			remaining = max(r.Remaining, 0)
			if err := s.appendLog(tx, lk, &r, now, recipient, OutcomeWrongPasscode); err != nil {
				return err
			}
			return putRecord(tx, lk, &r)
		}
		r.Remaining = min(r.Remaining+1, r.MaxAttempts) // give the reservation back
		if deny = r.unavailable(now); deny != "" {      // revoked or used up meanwhile
			return putRecord(tx, lk, &r)
		}
		r.Uses++
		r.LastUsed = now.UTC()
		if err := s.appendLog(tx, lk, &r, now, recipient, OutcomeOK); err != nil {
			return err
		}
		rec = r
		return putRecord(tx, lk, &r)
	})
	if err == nil && !ok {
		return Share{}, &PasscodeError{Remaining: remaining}
	}
	return s.grant(lk, &rec, now, recipient, deny, err)
}

// ifAvailable changes the share under lk, in a batch, if it is available
// at now: use changes the record (a use, a reserved attempt), which is then
// saved and returned. Otherwise deny says why, and nothing changes.
func (s *Store) ifAvailable(lk []byte, now time.Time, use func(tx kv.Tx, r *shareRecord) error) (rec shareRecord, deny string, err error) {
	err = s.batchShare(lk, func(tx kv.Tx) error {
		deny = ""
		r, err := getRecord(tx, lk)
		if err != nil {
			return err
		}
		if deny = r.unavailable(now); deny != "" {
			return nil
		}
		if err := use(tx, &r); err != nil {
			return err
		}
		rec = r
		return putRecord(tx, lk, &r)
	})
	return rec, deny, err
}

// checkSlot takes one of the passcode check slots of the share under lk,
// or returns ErrBusy when all are taken. done gives it back.
func (s *Store) checkSlot(lk []byte) (done func(), err error) {
	k := string(lk)
	s.checksMu.Lock()
	defer s.checksMu.Unlock()
	if s.checks[k] >= s.maxChecks {
		return nil, ErrBusy
	}
	s.checks[k]++
	return func() {
		s.checksMu.Lock()
		defer s.checksMu.Unlock()
		if s.checks[k]--; s.checks[k] <= 0 {
			delete(s.checks, k)
		}
	}, nil
}

// grant finishes an access: an error, a denial found inside a write
// transaction (logged in the background), or the granted share.
func (s *Store) grant(lk []byte, rec *shareRecord, now time.Time, recipient, deny string, err error) (Share, error) {
	if err != nil {
		return Share{}, err
	}
	if deny != "" {
		s.logLater(lk, now, recipient, deny)
		return Share{}, &UnavailableError{Reason: deny}
	}
	return s.share(lk, rec)
}

// CleanRecipient is the form of a recipient name the log keeps: surrounding
// space trimmed, control characters replaced by spaces, invalid UTF-8
// replaced, cut to MaxRecipientLength bytes on a character boundary.
func CleanRecipient(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if len(s) > MaxRecipientLength {
		cut := MaxRecipientLength
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return s
}

// logEntry is a log entry as sealed in the file.
type logEntry struct {
	Time      time.Time `json:"t"`
	Recipient string    `json:"r"`
	Outcome   string    `json:"o"`
	Count     int       `json:"n,omitempty"` // OutcomeNotLogged: how many
}

// appendLog adds an entry to r's log (the caller saves r), dropping the
// oldest entry beyond the per-share bound. Past the per-minute rate the
// access is only counted: in r.Unlogged, and in one OutcomeNotLogged
// entry for the minute, written when the next minute's first access is.
func (s *Store) appendLog(tx kv.Tx, lk []byte, r *shareRecord, now time.Time, recipient, outcome string) error {
	if m := now.Unix() / 60; m > r.LogMinute {
		if r.LogSkipped > 0 {
			if err := s.putLog(tx, lk, r, logEntry{Time: time.Unix(r.LogMinute*60, 0).UTC(), Outcome: OutcomeNotLogged, Count: r.LogSkipped}); err != nil {
				return err
			}
		}
		r.LogMinute, r.LogInMinute, r.LogSkipped = m, 0, 0
	}
	if r.LogInMinute >= s.logRate {
		r.LogSkipped++
		r.Unlogged++
		return nil
	}
	r.LogInMinute++
	return s.putLog(tx, lk, r, logEntry{Time: now.UTC(), Recipient: recipient, Outcome: outcome})
}

// putLog writes one entry to r's log.
func (s *Store) putLog(tx kv.Tx, lk []byte, r *shareRecord, e logEntry) error {
	r.LogSeq++
	k := logKey(lk, r.LogSeq)
	pt, err := json.Marshal(e)
	if err != nil {
		return err
	}
	lb := tx.Bucket(bucketLogs)
	if err := lb.Put(k, s.seal("log", k, pt)); err != nil {
		return err
	}
	if r.LogSeq > s.maxLog {
		return lb.Delete(logKey(lk, r.LogSeq-s.maxLog))
	}
	return nil
}

func logKey(lk []byte, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(slices.Clip(lk), seq)
}

func (s *Store) openLogEntry(k, v []byte) (LogEntry, error) {
	pt, err := s.unseal("log", k, v)
	if err != nil {
		return LogEntry{}, err
	}
	var e logEntry
	if err := json.Unmarshal(pt, &e); err != nil {
		return LogEntry{}, fmt.Errorf("%w: log entry: %v", ErrCorrupt, err)
	}
	return LogEntry{Seq: binary.BigEndian.Uint64(k[len(k)-8:]), Time: e.Time, Recipient: e.Recipient, Outcome: e.Outcome, Count: e.Count}, nil
}

// Denied requests are logged in the background, so refusing a dead link
// costs one read transaction, like an unknown id. At most maxPending
// entries wait; beyond that, entries are dropped (and counted), so a flood
// of requests for dead links cannot grow memory.
const maxPending = 4096

type pendingEntry struct {
	lk        []byte
	time      time.Time
	recipient string
	outcome   string
}

func (s *Store) logLater(lk []byte, now time.Time, recipient, outcome string) {
	s.logMu.Lock()
	if len(s.pending) < maxPending {
		s.pending = append(s.pending, pendingEntry{lk: lk, time: now, recipient: recipient, outcome: outcome})
	} else {
		s.dropped++
	}
	s.logMu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// DroppedLogEntries is how many denied requests went unlogged because the
// background log queue was full.
func (s *Store) DroppedLogEntries() uint64 {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	return s.dropped
}

func (s *Store) logWriter() {
	defer close(s.done)
	for {
		select {
		case <-s.stop:
			return
		case <-s.kick:
			_ = s.flushPending() // retried at the next kick, Log or Close
		}
	}
}

// flushPending writes the queued log entries in one transaction.
func (s *Store) flushPending() error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	s.logMu.Lock()
	batch := s.pending
	s.pending = nil
	s.logMu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	err := s.db.Update(func(tx kv.Tx) error {
		for _, e := range batch {
			r, err := getRecord(tx, e.lk)
			if err != nil {
				continue // deleted by Sweep meanwhile (or unreadable: nothing to log to)
			}
			if err := s.appendLog(tx, e.lk, &r, e.time, e.recipient, e.outcome); err != nil {
				return err
			}
			if err := putRecord(tx, e.lk, &r); err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, kv.ErrClosed) {
		return ErrClosed
	}
	if err != nil { // put them back for the next try
		s.logMu.Lock()
		s.pending = append(batch, s.pending...)
		if len(s.pending) > maxPending {
			s.dropped += uint64(len(s.pending) - maxPending)
			s.pending = s.pending[:maxPending]
		}
		s.logMu.Unlock()
	}
	return err
}
