//go:build !race

package server

// raceEnabled: the race detector is on (see race_test.go).
const raceEnabled = false
