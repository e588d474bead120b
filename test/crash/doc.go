// Package crash is phr's crash-safety harness. It has no code of its own:
// its tests build the real phr and phrd binaries, kill them with SIGKILL
// at random moments while they write, and check what is left on disk.
//
// # What is checked
//
// For `phr import` (real exports from ../../../shared/testdata, and a
// generated NDJSON file of more than 5,000 records so that the import is
// written in many transactions):
//
//   - after every kill the vault opens and `phr check` passes, saying
//     whether it rolled back an interrupted import;
//   - every file an import reported as done is in the vault whole;
//   - every file is whole or absent, never partial (after the rollback),
//     and the files present are those imported first;
//   - re-running the import ends with exactly the records of a reference
//     vault imported without kills: no record lost, none twice.
//
// For phrd (clients writing records, device readings and imports through
// the API): every write answered with a 2xx is in the vault after a kill,
// none is stored twice (readings are re-sent after the restart and must
// come back as duplicates), the vault passes Check, and after a restart
// the server lists every acknowledged record and takes new writes. The
// lane phrd/records-postgres does the same (records and readings) with
// the vault in PostgreSQL (--database-url), moved there by phrd migrate's
// code; it needs PHR_TEST_DATABASE_URL.
//
// For phrd's share store, on both of its backends (the file DATA/shares.db
// and PostgreSQL with --database-url, where the account's vault is too;
// the PostgreSQL lane needs
// PHR_TEST_DATABASE_URL, see pkg/kv/kvtest): clients create share links
// and send wrong passcodes while phrd is killed; after each restart every
// acknowledged share is listed, each share has spent at least the wrong
// passcodes answered with a 401 (a crash may lose an attempt's refund,
// never give an attempt back), and the last share with a passcode opens.
//
// Kill delays come from a seeded generator; the seed is logged (run with
// -v) and -crash.seed replays it. TestCrash logs a summary line: runs,
// kills, acknowledged writes checked, losses and duplicates.
package crash
