//go:build !race

// Package racedetect tells tests whether the race detector is on. Tests
// that push hundreds of megabytes through a parser to prove a memory
// bound skip under it: it multiplies their time tenfold and distorts the
// allocation figures they check. scripts/test.sh runs them without it.
package racedetect

// Enabled reports whether the race detector is on.
const Enabled = false
