package kv

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Postgres is a pool of connections to one PostgreSQL database that holds
// any number of namespaces. Its methods are safe for concurrent use, by
// any number of processes on any number of machines.
type Postgres struct {
	pool    *pgxpool.Pool
	timeout time.Duration
	trips   roundTrips
}

// roundTrips counts the statements and batches sent (pgx's tracer): a
// batch is one round trip, however many statements it holds.
type roundTrips struct{ n atomic.Uint64 }

func (r *roundTrips) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	r.n.Add(1)
	return ctx
}
func (r *roundTrips) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (r *roundTrips) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	r.n.Add(1)
	return ctx
}
func (r *roundTrips) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (r *roundTrips) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}

// RoundTrips is the number of statements and batches of statements this
// pool has sent to the database (each one a round trip), for tests and
// measurements of what an operation costs.
func (p *Postgres) RoundTrips() uint64 { return p.trips.n.Load() }

// PostgresOptions tune OpenPostgres.
type PostgresOptions struct {
	// Timeout bounds each transaction from its start to its commit
	// (waiting for the namespace's lock included). Default 30s.
	Timeout time.Duration
	// MaxConns bounds the pool (default: pgxpool's, 4 or the number of
	// CPUs, whichever is more).
	MaxConns int32
}

// OpenPostgres connects to the database at url (a postgres:// URL or a
// key=value connection string) and applies the schema migrations this
// version carries (Migrate). It fails with ErrUnavailable when the
// database cannot be reached.
func OpenPostgres(ctx context.Context, url string, opts *PostgresOptions) (*Postgres, error) {
	var o PostgresOptions
	if opts != nil {
		o = *opts
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's message may quote the URL, password included: say only
		// what kind of mistake it is.
		return nil, errors.New("database URL: not a valid PostgreSQL connection string")
	}
	if o.MaxConns > 0 {
		cfg.MaxConns = o.MaxConns
	}
	if cfg.ConnConfig.RuntimeParams == nil {
		cfg.ConnConfig.RuntimeParams = map[string]string{}
	}
	if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = "phrd"
	}
	p := &Postgres{timeout: o.Timeout}
	cfg.ConnConfig.Tracer = &p.trips
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, pgErr(err)
	}
	p.pool = pool
	if err := p.Migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return p, nil
}

// Close closes the pool.
func (p *Postgres) Close() { p.pool.Close() }

// Pool returns the connection pool (for tables of the server's own that
// are not key-value shaped).
func (p *Postgres) Pool() *pgxpool.Pool { return p.pool }

// Namespace returns the store called name in this database. Namespaces
// are independent: their Updates do not wait for each other.
func (p *Postgres) Namespace(name string) DB {
	sum := sha256.Sum256([]byte("phr kv namespace lock\x00" + name))
	return &pgDB{p: p, ns: name, lock: int64(binary.BigEndian.Uint64(sum[:8]))}
}

// Namespaces lists the namespaces whose names start with prefix, in
// order.
func (p *Postgres) Namespaces(ctx context.Context, prefix string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	rows, err := p.pool.Query(ctx, `SELECT DISTINCT ns FROM phr_kv WHERE ns >= $1 ORDER BY ns`, prefix)
	if err != nil {
		return nil, pgErr(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, pgErr(err)
	}
	out := names[:0]
	for _, n := range names {
		if strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	return out, nil
}

// DropNamespace deletes everything in the namespace, under its lock.
func (p *Postgres) DropNamespace(name string) error {
	d := p.Namespace(name).(*pgDB)
	return d.run(true, nil, func(t *pgTx) error {
		_, err := t.exec(`DELETE FROM phr_kv WHERE ns = $1`, name)
		return err
	})
}

// Migrations.

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationLock is the advisory lock that serialises migrations of nodes
// starting together.
const migrationLock = 0x7068726b764d4947 // "phrkvMIG"

type migration struct {
	version int
	name    string
	sql     string
}

func migrations() ([]migration, error) {
	ents, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range ents {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must start with its version", e.Name())
		}
		b, err := migrationFiles.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %s: versions must be 1, 2, 3, ... without gaps", m.name)
		}
	}
	return ms, nil
}

// SchemaVersion is the newest schema version this build knows.
func SchemaVersion() int {
	ms, _ := migrations()
	return len(ms)
}

// Migrate brings the database's schema to this version's, in one
// transaction under an advisory lock: nodes starting together wait for
// each other, and a migration that fails leaves the schema as it was. A
// database migrated by a newer version is refused.
func (p *Postgres) Migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	tx, err := p.pool.Begin(ctx)
	if err != nil {
		return pgErr(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationLock)); err != nil {
		return pgErr(err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS phr_schema_migrations (
		version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return pgErr(err)
	}
	var have int
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM phr_schema_migrations`).Scan(&have); err != nil {
		return pgErr(err)
	}
	if have > len(ms) {
		return fmt.Errorf("database schema version %d is newer than this phrd knows (%d): upgrade phrd", have, len(ms))
	}
	for _, m := range ms[have:] {
		if _, err := tx.Exec(ctx, m.sql); err != nil {
			return fmt.Errorf("migration %s: %w", m.name, pgErr(err))
		}
		if _, err := tx.Exec(ctx, `INSERT INTO phr_schema_migrations (version, name) VALUES ($1, $2)`, m.version, m.name); err != nil {
			return pgErr(err)
		}
	}
	return pgErr(tx.Commit(ctx))
}

// A namespace.

type pgDB struct {
	p      *Postgres
	ns     string
	lock   int64
	closed atomic.Bool

	batchMu sync.Mutex
	batch   [2]pendingBatch // [0] Batch, [1] BatchKeys: waiting for their next transaction
}

type pendingBatch struct {
	calls []batchCall
	timer *time.Timer
}

type batchCall struct {
	fn    func(Tx) error
	locks []int64 // nil: the namespace's lock; else the keys' locks (BatchKeys)
	err   chan error
}

func (d *pgDB) View(fn func(Tx) error) error {
	return d.run(false, nil, func(t *pgTx) error { return fn(t) })
}

func (d *pgDB) Update(fn func(Tx) error) error {
	return d.run(true, nil, func(t *pgTx) error { return fn(t) })
}

// GetOne reads one key of a top-level bucket in one statement, outside
// any transaction (OneGetter): one statement is its own snapshot.
func (d *pgDB) GetOne(bucket, key []byte) ([]byte, error) {
	if d.closed.Load() {
		return nil, ErrClosed
	}
	if len(bucket) == 0 || len(key) == 0 {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), d.p.timeout)
	defer cancel()
	var v []byte
	err := d.p.pool.QueryRow(ctx, `SELECT v FROM phr_kv WHERE ns = $1 AND b = $2 AND k = $3`, d.ns, childPath(nil, bucket), key).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return v, pgErr(err)
}

// UpdateKeys is Update under the locks of keys (KeyedDB): the namespace's
// lock taken shared, then each key's lock, in one order for everyone so
// that two transactions never wait for each other in a circle.
func (d *pgDB) UpdateKeys(keys [][]byte, fn func(Tx) error) error {
	return d.run(true, d.keyLocks(keys), func(t *pgTx) error { return fn(t) })
}

// BatchKeys is Batch under the locks of keys: the batch takes the locks
// of all its calls' keys.
func (d *pgDB) BatchKeys(keys [][]byte, fn func(Tx) error) error {
	return d.batchCall(d.keyLocks(keys), fn)
}

// keyLocks are the advisory lock ids of keys in this namespace, sorted
// and without repeats. An empty list still means "keyed": the namespace
// lock is then taken shared only.
func (d *pgDB) keyLocks(keys [][]byte) []int64 {
	ids := make([]int64, 0, len(keys))
	for _, k := range keys {
		sum := sha256.Sum256(append([]byte("phr kv key lock\x00"+d.ns+"\x00"), k...))
		ids = append(ids, int64(binary.BigEndian.Uint64(sum[:8])))
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// Batches: calls arriving within batchDelay of each other (or up to
// batchMax of them) run in one transaction, so that they share one
// commit and one wait for the namespace's lock, as bbolt's Batch shares
// an fsync.
const (
	batchDelay = time.Millisecond
	batchMax   = 500
)

// errSolo tells a Batch caller that its fn failed inside a batch and is
// to run again on its own, so that its error is its own.
var errSolo = errors.New("kv: run alone")

func (d *pgDB) Batch(fn func(Tx) error) error { return d.batchCall(nil, fn) }

func (d *pgDB) batchCall(locks []int64, fn func(Tx) error) error {
	c := batchCall{fn: fn, locks: locks, err: make(chan error, 1)}
	q := 0
	if locks != nil {
		q = 1
	}
	d.batchMu.Lock()
	b := &d.batch[q]
	b.calls = append(b.calls, c)
	switch {
	case len(b.calls) >= batchMax:
		calls := b.calls
		b.calls = nil
		if b.timer != nil {
			b.timer.Stop()
			b.timer = nil
		}
		go d.runBatch(calls)
	case len(b.calls) == 1:
		b.timer = time.AfterFunc(batchDelay, func() { d.flushBatch(q) })
	}
	d.batchMu.Unlock()
	err := <-c.err
	if err == errSolo {
		return d.run(true, locks, func(t *pgTx) error { return fn(t) })
	}
	return err
}

func (d *pgDB) flushBatch(q int) {
	d.batchMu.Lock()
	calls := d.batch[q].calls
	d.batch[q] = pendingBatch{}
	d.batchMu.Unlock()
	if len(calls) > 0 {
		d.runBatch(calls)
	}
}

// runBatch runs calls in one transaction. If one fn fails, the
// transaction is rolled back, that call runs again alone, and the others
// run again as a batch; if the database fails, every call gets its error.
func (d *pgDB) runBatch(calls []batchCall) {
	for len(calls) > 0 {
		// Keyed calls: the union of their keys' locks.
		var locks []int64
		if calls[0].locks != nil {
			locks = []int64{}
			for _, c := range calls {
				locks = append(locks, c.locks...)
			}
			slices.Sort(locks)
			locks = slices.Compact(locks)
		}
		failed := -1
		err := d.run(true, locks, func(t *pgTx) error {
			for i, c := range calls {
				if err := c.fn(t); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed >= 0 && !errors.Is(err, ErrUnavailable) {
			calls[failed].err <- errSolo
			calls = append(calls[:failed:failed], calls[failed+1:]...)
			continue
		}
		for _, c := range calls {
			c.err <- err
		}
		return
	}
}

func (d *pgDB) Close() error {
	d.closed.Store(true)
	return nil
}

// run runs fn in a transaction on one connection of the pool.
//
// An Update takes the namespace's advisory transaction lock first and
// runs at READ COMMITTED: every Update of the namespace holds that lock
// from its first statement to its commit, so each one sees all that the
// ones before it committed, exactly as bbolt's single writer does. An
// advisory lock rather than a row lock, because a namespace has no row
// to lock before its first write, and because the lock must cover reads
// (a Get deciding a later Put), not only the rows written. A View runs at
// REPEATABLE READ READ ONLY: one snapshot for all its statements, and it
// takes no lock, so readers never wait for writers. With keyLocks
// (UpdateKeys, BatchKeys) an Update takes the namespace's lock shared and
// then the keys' locks, in ascending order: keyed writers of different
// keys run together, and a plain Update waits for all of them.
func (d *pgDB) run(write bool, keyLocks []int64, fn func(*pgTx) error) error {
	if d.closed.Load() {
		return ErrClosed
	}
	ctx, cancel := context.WithTimeout(context.Background(), d.p.timeout)
	defer cancel()
	// The transaction's first statements wait in its queue and go with
	// its first read (or its commit): one round trip, not one each.
	begin := []queued{{sql: "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"}}
	switch {
	case write && keyLocks == nil:
		begin = []queued{{sql: "BEGIN ISOLATION LEVEL READ COMMITTED"}, {sql: "SELECT pg_advisory_xact_lock($1)", args: []any{d.lock}}}
	case write:
		begin = []queued{{sql: "BEGIN ISOLATION LEVEL READ COMMITTED"}, {sql: "SELECT pg_advisory_xact_lock_shared($1)", args: []any{d.lock}}}
		for _, id := range keyLocks {
			// In this order, so that they are taken in this order.
			begin = append(begin, queued{sql: "SELECT pg_advisory_xact_lock($1)", args: []any{id}})
		}
	}
	pc, err := d.p.pool.Acquire(ctx)
	if err != nil {
		return pgErr(err)
	}
	t := &pgTx{ctx: ctx, pool: d.p.pool, pc: pc, conn: pc.Conn(), ns: d.ns, write: write, buckets: map[string]bool{}, queue: begin}
	// Release destroys a connection left inside a transaction.
	defer func() {
		if t.pc != nil {
			t.pc.Release()
		}
	}()
	ferr := fn(t)
	if t.err != nil || ferr != nil {
		if t.begun {
			if _, rerr := t.conn.Exec(ctx, "ROLLBACK"); rerr != nil && isUnavailable(rerr) {
				// fn's error stands: nothing was committed either way.
				t.conn.Close(context.Background())
			}
		}
		if t.err != nil {
			return t.err
		}
		return ferr
	}
	if !t.begun && !write {
		return nil // a View that read nothing
	}
	if _, err := t.exec("COMMIT"); err != nil {
		// A queued write failed, or the commit did: nothing was
		// committed. End the transaction the batch left open, if any.
		if !t.conn.IsClosed() {
			t.conn.Exec(ctx, "ROLLBACK")
		}
		return pgErr(err)
	}
	return nil
}

type pgTx struct {
	ctx   context.Context
	pool  *pgxpool.Pool
	pc    *pgxpool.Conn
	conn  *pgx.Conn
	ns    string
	write bool
	err   error // the first failure of the backend; sticky
	gen   int   // counts writes, so that cursors know to refetch

	// queue holds statements not sent yet (the transaction's BEGIN and
	// locks, then its writes): they go in one round trip with the next
	// statement whose answer is needed (a read, or the commit). begun
	// says that the BEGIN went.
	queue []queued
	begun bool

	// buckets caches which bucket paths exist: a View's snapshot and an
	// Update's lock keep the answer valid for the transaction. kids holds,
	// per bucket path, the names of the nested buckets in it (nil: too
	// many to hold), all of them read at once (nested).
	buckets map[string]bool
	kids    map[string]map[string]bool
	kidsAll bool // kids holds every nested bucket: a path absent has none

	// seen holds values the transaction read or wrote, per bucket path
	// and key (remember).
	seen map[string]map[string][]byte
}

// queued is a statement waiting in a transaction's queue. With one set,
// it must change exactly one row, or the transaction fails with
// ErrIncompatibleValue (a Put on a name that a nested bucket took
// meanwhile).
type queued struct {
	sql  string
	args []any
	one  bool
}

// send sends the queued statements followed by sql (if not ""), in one
// round trip, and returns the batch's results positioned at sql's. The
// caller reads sql's result from it and closes it. A connection the
// server dropped while it sat idle in the pool fails the transaction's
// first round trip before anything was done: that one is sent once more
// on a fresh connection.
func (t *pgTx) send(sql string, args ...any) (pgx.BatchResults, error) {
	for attempt := 0; ; attempt++ {
		b := &pgx.Batch{}
		for _, q := range t.queue {
			b.Queue(q.sql, q.args...)
		}
		if sql != "" {
			b.Queue(sql, args...)
		}
		first := !t.begun
		br := t.conn.SendBatch(t.ctx, b)
		var err error
		for _, q := range t.queue {
			var tag pgconn.CommandTag
			if tag, err = br.Exec(); err != nil {
				break
			}
			if q.one && tag.RowsAffected() != 1 {
				err = ErrIncompatibleValue
				break
			}
		}
		if err == nil {
			t.begun = true
			t.queue = t.queue[:0]
			return br, nil
		}
		br.Close()
		if first && attempt == 0 && t.conn.IsClosed() {
			t.pc.Release() // first: the pool may have no room for another
			pc, aerr := t.pool.Acquire(t.ctx)
			if aerr != nil {
				t.pc = nil // t.conn stays the closed one: its calls fail
				return nil, aerr
			}
			t.pc, t.conn = pc, pc.Conn()
			continue
		}
		t.begun = true // ROLLBACK ends what the batch began, if anything
		return nil, err
	}
}

// enqueue adds a write to the queue; it goes with the next read or the
// commit.
func (t *pgTx) enqueue(one bool, sql string, args ...any) {
	t.queue = append(t.queue, queued{sql: sql, args: args, one: one})
}

// query runs sql after the queued statements; the caller closes the rows.
func (t *pgTx) query(sql string, args ...any) (pgx.Rows, error) {
	br, err := t.send(sql, args...)
	if err != nil {
		return nil, err
	}
	rows, err := br.Query()
	if err != nil {
		br.Close()
		return nil, err
	}
	return &batchRows{Rows: rows, br: br}, nil
}

// batchRows closes its batch with its rows.
type batchRows struct {
	pgx.Rows
	br     pgx.BatchResults
	closed bool
	err    error
}

func (r *batchRows) Close() {
	if !r.closed {
		r.closed = true
		r.Rows.Close()
		r.err = r.br.Close()
	}
}

func (r *batchRows) Err() error {
	if err := r.Rows.Err(); err != nil {
		return err
	}
	return r.err
}

// queryRow is pgx's QueryRow after the queued statements.
func (t *pgTx) queryRow(sql string, args ...any) pgx.Row {
	return &batchRow{t: t, sql: sql, args: args}
}

type batchRow struct {
	t    *pgTx
	sql  string
	args []any
}

func (r *batchRow) Scan(dest ...any) error {
	rows, err := r.t.query(r.sql, r.args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	if !rows.Next() {
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		return pgx.ErrNoRows
	}
	if err := rows.Scan(dest...); err != nil {
		return err
	}
	rows.Close()
	return rows.Err()
}

// exec runs sql after the queued statements.
func (t *pgTx) exec(sql string, args ...any) (pgconn.CommandTag, error) {
	br, err := t.send(sql, args...)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return tag, err
}

// fail records the first failure of the backend and returns it.
func (t *pgTx) fail(err error) error {
	if t.err == nil {
		t.err = pgErr(err)
		if t.conn.IsClosed() && !errors.Is(t.err, ErrUnavailable) {
			t.err = fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		if readOnly(err) {
			// A primary demoted by a failover: drop the connection, so
			// that the pool connects afresh (to the new primary, with
			// target_session_attrs=read-write).
			t.conn.Close(context.Background())
		}
	}
	return t.err
}

func (t *pgTx) Writable() bool { return t.write }

func (t *pgTx) root() *pgBucket { return &pgBucket{tx: t, path: []byte{}} }

func (t *pgTx) Bucket(name []byte) Bucket                { return t.root().Bucket(name) }
func (t *pgTx) CreateBucket(name []byte) (Bucket, error) { return t.root().CreateBucket(name) }
func (t *pgTx) CreateBucketIfNotExists(name []byte) (Bucket, error) {
	return t.root().CreateBucketIfNotExists(name)
}
func (t *pgTx) DeleteBucket(name []byte) error { return t.root().DeleteBucket(name) }

func (t *pgTx) ForEach(fn func(name []byte, b Bucket) error) error {
	root := t.root()
	return root.ForEach(func(k, v []byte) error {
		if v != nil {
			return nil // the root holds only buckets
		}
		return fn(k, &pgBucket{tx: t, path: childPath(root.path, k)})
	})
}

// pgBucket is a bucket: path is its own path, the paths of its ancestors'
// names each length-prefixed (the root's is empty).
type pgBucket struct {
	tx   *pgTx
	path []byte
}

func childPath(parent, name []byte) []byte {
	p := make([]byte, 0, len(parent)+binary.MaxVarintLen64+len(name))
	p = append(p, parent...)
	p = binary.AppendUvarint(p, uint64(len(name)))
	return append(p, name...)
}

// parentAndName splits a non-root path into its parent's path and its name.
func (b *pgBucket) parentAndName() (parent, name []byte) {
	p := b.path
	var off int
	var last int
	for off < len(p) {
		last = off
		n, w := binary.Uvarint(p[off:])
		off += w + int(n)
	}
	n, w := binary.Uvarint(p[last:])
	return p[:last], p[last+w : last+w+int(n)]
}

func (b *pgBucket) Get(key []byte) []byte {
	t := b.tx
	if t.err != nil || len(key) == 0 {
		return nil
	}
	if v, ok := t.seen[string(b.path)][string(key)]; ok {
		return v
	}
	var v []byte
	err := t.queryRow(`SELECT v FROM phr_kv WHERE ns = $1 AND b = $2 AND k = $3`, t.ns, b.path, key).Scan(&v)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		v = nil
	case err != nil:
		t.fail(err)
		return nil
	}
	// v is nil for a nested bucket, as for a key that is absent.
	if t.write {
		t.remember(b.path, key, v)
	}
	return v
}

// remember notes what key holds in the bucket at path (nil: nothing, or a
// nested bucket), for the transaction's later Gets. An Update remembers
// what it reads and writes (its lock keeps them so); a View only what it
// prefetched, so that a long walk with GetMany does not hold everything
// it read.
func (t *pgTx) remember(path, key, v []byte) {
	if t.seen == nil {
		t.seen = map[string]map[string][]byte{}
	}
	m := t.seen[string(path)]
	if m == nil {
		m = map[string][]byte{}
		t.seen[string(path)] = m
	}
	m[string(key)] = v
}

// Prefetch reads the values of keys not read yet in one statement, for
// the transaction's Gets to answer from (Prefetcher).
func (b *pgBucket) Prefetch(keys [][]byte) {
	t := b.tx
	seen := t.seen[string(b.path)]
	var ask [][]byte
	for _, k := range keys {
		if _, ok := seen[string(k)]; !ok && len(k) > 0 {
			ask = append(ask, k)
		}
	}
	if len(ask) == 0 {
		return
	}
	for i, v := range b.fetch(ask) {
		t.remember(b.path, ask[i], v)
	}
}

// GetMany reads every key's value in one statement (ManyGetter).
func (b *pgBucket) GetMany(keys [][]byte) [][]byte {
	t := b.tx
	out := make([][]byte, len(keys))
	seen := t.seen[string(b.path)]
	var ask [][]byte
	var at []int
	for i, k := range keys {
		if v, ok := seen[string(k)]; ok {
			out[i] = v
		} else if len(k) > 0 {
			ask = append(ask, k)
			at = append(at, i)
		}
	}
	if len(ask) == 0 {
		return out
	}
	for j, v := range b.fetch(ask) {
		out[at[j]] = v
		if t.write {
			t.remember(b.path, ask[j], v)
		}
	}
	return out
}

// fetch reads the values of keys (none empty) in one statement: nil for
// a key absent or naming a nested bucket, and for every key when the
// backend fails (recorded in the transaction).
func (b *pgBucket) fetch(keys [][]byte) [][]byte {
	t := b.tx
	out := make([][]byte, len(keys))
	if t.err != nil {
		return out
	}
	at := make(map[string][]int, len(keys))
	ask := make([][]byte, 0, len(keys))
	for i, k := range keys {
		if _, ok := at[string(k)]; !ok {
			ask = append(ask, k)
		}
		at[string(k)] = append(at[string(k)], i)
	}
	rows, err := t.query(`SELECT k, v FROM phr_kv WHERE ns = $1 AND b = $2 AND k = ANY($3) AND v IS NOT NULL`, t.ns, b.path, ask)
	if err != nil {
		t.fail(err)
		return out
	}
	defer rows.Close()
	for rows.Next() {
		var k, v []byte
		if err := rows.Scan(&k, &v); err != nil {
			t.fail(err)
			return make([][]byte, len(keys))
		}
		for _, i := range at[string(k)] {
			out[i] = v
		}
	}
	if err := rows.Err(); err != nil {
		t.fail(err)
		return make([][]byte, len(keys))
	}
	return out
}

func (b *pgBucket) checkWrite(key []byte) error {
	t := b.tx
	if t.err != nil {
		return t.err
	}
	if !t.write {
		return ErrTxNotWritable
	}
	if len(key) == 0 {
		return ErrKeyRequired
	}
	if len(key) > MaxKeySize {
		return ErrKeyTooLarge
	}
	return nil
}

func (b *pgBucket) Put(key, value []byte) error {
	if err := b.checkWrite(key); err != nil {
		return err
	}
	if len(value) > maxPGValue {
		return ErrValueTooLarge
	}
	if value == nil {
		value = []byte{}
	}
	t := b.tx
	switch b.nested(key) {
	case -1:
		return t.err
	case 1:
		return ErrIncompatibleValue
	}
	t.gen++
	// Sent with the next read or the commit. The update does nothing
	// when the key is a nested bucket (one made since nested looked, by
	// a keyed writer): then no row changes and the transaction fails.
	t.enqueue(true, `INSERT INTO phr_kv (ns, b, k, v) VALUES ($1, $2, $3, $4)
		ON CONFLICT (ns, b, k) DO UPDATE SET v = excluded.v WHERE phr_kv.v IS NOT NULL`, t.ns, b.path, key, value)
	t.remember(b.path, key, value)
	return nil
}

func (b *pgBucket) Delete(key []byte) error {
	if err := b.checkWrite(key); err != nil {
		return err
	}
	t := b.tx
	// Deleting a bucket's name is refused, as bbolt does; an absent key is
	// no error.
	switch b.nested(key) {
	case -1:
		return t.err
	case 1:
		return ErrIncompatibleValue
	}
	t.gen++
	t.enqueue(false, `DELETE FROM phr_kv WHERE ns = $1 AND b = $2 AND k = $3 AND v IS NOT NULL`, t.ns, b.path, key)
	t.remember(b.path, key, nil)
	return nil
}

// maxKids bounds the nested buckets a transaction holds the names of;
// in a store with more, each bucket's are read when it is first asked
// about, and with more than that in one bucket, name by name.
const maxKids = 1000

// nested reports whether name is a nested bucket in b: 1 yes, 0 no, -1
// on a failure (recorded in the transaction). A transaction reads the
// names of every nested bucket of the store once, in one statement that
// goes with its BEGIN (an index holds the bucket rows apart from the
// keys), so that opening buckets, and checking that a Put or Delete does
// not name one, costs no round trip.
func (b *pgBucket) nested(name []byte) int {
	t := b.tx
	if t.err != nil {
		return -1
	}
	if t.buckets[string(childPath(b.path, name))] {
		return 1
	}
	if t.kids == nil {
		rows, err := t.query(`SELECT b, k FROM phr_kv WHERE ns = $1 AND v IS NULL ORDER BY b, k LIMIT `+strconv.Itoa(maxKids+1), t.ns)
		if err != nil {
			t.fail(err)
			return -1
		}
		type row struct{ B, K []byte }
		all, err := pgx.CollectRows(rows, pgx.RowToStructByPos[row])
		if err != nil {
			t.fail(err)
			return -1
		}
		t.kids = map[string]map[string]bool{}
		t.kidsAll = len(all) <= maxKids
		if t.kidsAll {
			for _, r := range all {
				if t.kids[string(r.B)] == nil {
					t.kids[string(r.B)] = map[string]bool{}
				}
				t.kids[string(r.B)][string(r.K)] = true
			}
		}
	}
	kids, ok := t.kids[string(b.path)]
	if !ok && t.kidsAll {
		kids = map[string]bool{}
		t.kids[string(b.path)] = kids
	}
	if !ok && !t.kidsAll {
		rows, err := t.query(`SELECT k FROM phr_kv WHERE ns = $1 AND b = $2 AND v IS NULL ORDER BY k LIMIT `+strconv.Itoa(maxKids+1), t.ns, b.path)
		if err != nil {
			t.fail(err)
			return -1
		}
		names, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
		if err != nil {
			t.fail(err)
			return -1
		}
		if len(names) <= maxKids {
			kids = make(map[string]bool, len(names))
			for _, n := range names {
				kids[string(n)] = true
			}
		}
		t.kids[string(b.path)] = kids
	}
	if kids == nil {
		switch b.kind(name) {
		case -1:
			return -1
		case 2:
			return 1
		}
		return 0
	}
	if kids[string(name)] {
		return 1
	}
	return 0
}

// kind reports what the name in this bucket is: 0 absent, 1 a key, 2 a
// nested bucket; -1 on a failure (recorded in the transaction).
func (b *pgBucket) kind(name []byte) int {
	t := b.tx
	cp := childPath(b.path, name)
	if known, ok := t.buckets[string(cp)]; ok && known {
		return 2
	}
	if kids := t.kids[string(b.path)]; kids != nil && kids[string(name)] {
		return 2
	}
	var isBucket bool
	err := t.queryRow(`SELECT v IS NULL FROM phr_kv WHERE ns = $1 AND b = $2 AND k = $3`, t.ns, b.path, name).Scan(&isBucket)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return 0
	case err != nil:
		t.fail(err)
		return -1
	case isBucket:
		t.buckets[string(cp)] = true
		return 2
	}
	return 1
}

func (b *pgBucket) Tx() Tx { return b.tx }

func (b *pgBucket) Bucket(name []byte) Bucket {
	if len(name) == 0 {
		return nil
	}
	switch b.nested(name) {
	case 0:
		return nil
	case -1:
		// The backend failed (now or before): a bucket that does
		// nothing, as every operation of the transaction now does,
		// rather than nil, which callers take for "absent" and which
		// code that knows its buckets exist would not expect.
	}
	return &pgBucket{tx: b.tx, path: childPath(b.path, name)}
}

func (b *pgBucket) CreateBucket(name []byte) (Bucket, error) {
	return b.createBucket(name, false)
}

func (b *pgBucket) CreateBucketIfNotExists(name []byte) (Bucket, error) {
	return b.createBucket(name, true)
}

func (b *pgBucket) createBucket(name []byte, mayExist bool) (Bucket, error) {
	t := b.tx
	if t.err != nil {
		return nil, t.err
	}
	if !t.write {
		return nil, ErrTxNotWritable
	}
	if len(name) == 0 {
		return nil, ErrBucketNameRequired
	}
	if len(name) > MaxKeySize {
		return nil, ErrKeyTooLarge
	}
	switch b.kind(name) {
	case -1:
		return nil, t.err
	case 1:
		return nil, ErrIncompatibleValue
	case 2:
		if !mayExist {
			return nil, ErrBucketExists
		}
		return &pgBucket{tx: t, path: childPath(b.path, name)}, nil
	}
	t.gen++
	if _, err := t.exec(`INSERT INTO phr_kv (ns, b, k, v, seq) VALUES ($1, $2, $3, NULL, 0)`, t.ns, b.path, name); err != nil {
		return nil, t.fail(err)
	}
	cp := childPath(b.path, name)
	t.buckets[string(cp)] = true
	if kids := t.kids[string(b.path)]; kids != nil {
		kids[string(name)] = true
	} else if t.kidsAll {
		t.kids[string(b.path)] = map[string]bool{string(name): true}
	}
	return &pgBucket{tx: t, path: cp}, nil
}

func (b *pgBucket) DeleteBucket(name []byte) error {
	t := b.tx
	if t.err != nil {
		return t.err
	}
	if !t.write {
		return ErrTxNotWritable
	}
	if len(name) == 0 {
		return ErrBucketNameRequired
	}
	switch b.kind(name) {
	case -1:
		return t.err
	case 0:
		return ErrBucketNotFound
	case 1:
		return ErrIncompatibleValue
	}
	t.gen++
	cp := childPath(b.path, name)
	// Every descendant's path starts with cp: delete the range [cp, succ).
	var err error
	if hi := successor(cp); hi != nil {
		_, err = t.exec(`DELETE FROM phr_kv WHERE ns = $1 AND ((b = $2 AND k = $3) OR (b >= $4 AND b < $5))`, t.ns, b.path, name, cp, hi)
	} else {
		_, err = t.exec(`DELETE FROM phr_kv WHERE ns = $1 AND ((b = $2 AND k = $3) OR b >= $4)`, t.ns, b.path, name, cp)
	}
	if err != nil {
		return t.fail(err)
	}
	for p := range t.buckets {
		if strings.HasPrefix(p, string(cp)) {
			delete(t.buckets, p)
		}
	}
	for p := range t.kids {
		if strings.HasPrefix(p, string(cp)) {
			delete(t.kids, p)
		}
	}
	for p := range t.seen {
		if strings.HasPrefix(p, string(cp)) {
			delete(t.seen, p)
		}
	}
	if kids := t.kids[string(b.path)]; kids != nil {
		delete(kids, string(name))
	}
	return nil
}

// successor is the smallest byte string greater than every string that
// starts with p, or nil when there is none (p is all 0xff).
func successor(p []byte) []byte {
	s := append([]byte(nil), p...)
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] != 0xff {
			s[i]++
			return s[:i+1]
		}
	}
	return nil
}

func (b *pgBucket) ForEach(fn func(k, v []byte) error) error {
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if err := fn(k, v); err != nil {
			return err
		}
	}
	return b.tx.err
}

func (b *pgBucket) seqOp(query string, args ...any) (uint64, error) {
	t := b.tx
	if t.err != nil {
		return 0, t.err
	}
	if len(b.path) == 0 {
		return 0, ErrIncompatibleValue // the root has no sequence
	}
	parent, name := b.parentAndName()
	var s int64
	err := t.queryRow(query, append([]any{t.ns, parent, name}, args...)...).Scan(&s)
	if err != nil {
		return 0, t.fail(err)
	}
	return uint64(s), nil
}

func (b *pgBucket) NextSequence() (uint64, error) {
	if !b.tx.write {
		return 0, ErrTxNotWritable
	}
	return b.seqOp(`UPDATE phr_kv SET seq = seq + 1 WHERE ns = $1 AND b = $2 AND k = $3 AND v IS NULL RETURNING seq`)
}

func (b *pgBucket) Sequence() uint64 {
	s, _ := b.seqOp(`SELECT seq FROM phr_kv WHERE ns = $1 AND b = $2 AND k = $3 AND v IS NULL`)
	return s
}

func (b *pgBucket) SetSequence(v uint64) error {
	if !b.tx.write {
		return ErrTxNotWritable
	}
	_, err := b.seqOp(`UPDATE phr_kv SET seq = $4 WHERE ns = $1 AND b = $2 AND k = $3 AND v IS NULL RETURNING seq`, int64(v))
	return err
}

// Cursors fetch rows in batches: a walk of n keys costs n/cursorBatch
// queries, never one per step. A batch is refetched when the transaction
// wrote since it was fetched, so that a cursor sees its own
// transaction's writes as bbolt's does.
//
// A batch also stops at cursorBytes of values: a bucket of multi-MiB
// values (share files) is walked a few rows at a time, and the next
// query asks for no more rows than the last one held.
//
// A cursor's first query asks for cursorFirst rows, and each next one for
// twice as many, up to cursorBatch: a Seek that reads a key or two (a
// lookup by prefix) does not fetch 128 values.
const (
	cursorFirst = 16
	cursorBatch = 128
	cursorBytes = 8 << 20
)

type kvRow struct{ k, v []byte }

type pgCursor struct {
	b     *pgBucket
	rows  []kvRow
	i     int  // position in rows
	asc   bool // rows are in ascending order
	gen   int  // t.gen when rows were fetched
	more  bool // the query that filled rows hit its limit (or the byte bound)
	limit int  // rows the next query asks for: cursorBatch, less after large values
	valid bool // the cursor is on rows[i]
}

func (b *pgBucket) Cursor() Cursor { return &pgCursor{b: b, limit: cursorFirst} }

// fetch fills rows with the keys after (asc) or before (!asc) from, or
// from the first or last key when from is nil; inclusive makes the bound
// >= (Seek).
func (c *pgCursor) fetch(from []byte, asc, inclusive bool) {
	t := c.b.tx
	c.rows, c.i, c.asc, c.gen, c.valid, c.more = c.rows[:0], 0, asc, t.gen, false, false
	if t.err != nil {
		return
	}
	// The limit is a parameter, so that one prepared statement serves
	// every size.
	q := `SELECT k, v FROM phr_kv WHERE ns = $1 AND b = $2`
	args := []any{t.ns, c.b.path, c.limit}
	switch {
	case from == nil && asc:
		q += ` ORDER BY k LIMIT $3`
	case from == nil:
		q += ` ORDER BY k DESC LIMIT $3`
	case asc && inclusive:
		q += ` AND k >= $4 ORDER BY k LIMIT $3`
		args = append(args, from)
	case asc:
		q += ` AND k > $4 ORDER BY k LIMIT $3`
		args = append(args, from)
	default:
		q += ` AND k < $4 ORDER BY k DESC LIMIT $3`
		args = append(args, from)
	}
	rows, err := t.query(q, args...)
	if err != nil {
		t.fail(err)
		return
	}
	size, full := 0, false
	for rows.Next() {
		var r kvRow
		if err := rows.Scan(&r.k, &r.v); err != nil {
			rows.Close()
			t.fail(err)
			c.rows = c.rows[:0]
			return
		}
		c.rows = append(c.rows, r)
		if size += len(r.v); size >= cursorBytes {
			full = true
			break
		}
	}
	rows.Close() // after a break, the rows left are read and dropped
	if err := rows.Err(); err != nil {
		t.fail(err)
		c.rows = c.rows[:0]
		return
	}
	c.more = full || len(c.rows) == c.limit
	switch {
	case full:
		c.limit = max(1, len(c.rows))
	case size < cursorBytes/4:
		c.limit = min(cursorBatch, 2*c.limit)
	}
	c.valid = len(c.rows) > 0
}

func (c *pgCursor) at() ([]byte, []byte) {
	if !c.valid || c.i < 0 || c.i >= len(c.rows) {
		c.valid = false
		return nil, nil
	}
	r := c.rows[c.i]
	return r.k, r.v
}

func (c *pgCursor) First() ([]byte, []byte) {
	c.fetch(nil, true, false)
	return c.at()
}

func (c *pgCursor) Last() ([]byte, []byte) {
	c.fetch(nil, false, false)
	return c.at()
}

func (c *pgCursor) Seek(seek []byte) ([]byte, []byte) {
	if seek == nil {
		seek = []byte{}
	}
	c.fetch(seek, true, true)
	return c.at()
}

// step moves one key forward (asc) or back.
func (c *pgCursor) step(asc bool) ([]byte, []byte) {
	if !c.valid {
		return nil, nil
	}
	cur := c.rows[c.i].k
	if c.gen != c.b.tx.gen || c.asc != asc {
		// Stale or walking the other way: fetch afresh from here.
		c.fetch(cur, asc, false)
		return c.at()
	}
	c.i++
	if c.i < len(c.rows) {
		return c.at()
	}
	if !c.more {
		c.valid = false
		return nil, nil
	}
	c.fetch(cur, asc, false)
	return c.at()
}

func (c *pgCursor) Next() ([]byte, []byte) { return c.step(true) }
func (c *pgCursor) Prev() ([]byte, []byte) { return c.step(false) }

// pgErr marks failures of the backend (no connection, timed out,
// server shutting down or out of resources) as ErrUnavailable; other
// errors pass unchanged.
func pgErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrUnavailable) {
		return err
	}
	if isUnavailable(err) {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return err
}

// readOnly reports a write refused by a server that is (now) a replica.
func readOnly(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "25006" // read_only_sql_transaction
}

func isUnavailable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "25006": // a replica: the primary is elsewhere now
			return true
		case strings.HasPrefix(pe.Code, "08"), // connection exception
			strings.HasPrefix(pe.Code, "53"),  // insufficient resources
			strings.HasPrefix(pe.Code, "57P"), // admin shutdown, crash shutdown, cannot connect now
			pe.Code == "57014":                // statement timeout / canceled
			return true
		}
		return false
	}
	var ne net.Error
	var ce *pgconn.ConnectError
	return errors.As(err, &ce) || errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) ||
		pgconn.SafeToRetry(err) || pgconn.Timeout(err) || errors.Is(err, net.ErrClosed)
}
