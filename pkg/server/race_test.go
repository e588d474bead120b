//go:build race

package server

// raceEnabled: the race detector is on; it slows memory-heavy code paths
// several times over, so timing comparisons mean nothing.
const raceEnabled = true
