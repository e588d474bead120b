package app

import "os"

// ci reports whether the tests run in CI, where a missing browser or node
// is a failure, not a reason to skip.
func ci() bool { return os.Getenv("CI") != "" }
