package pipeline

// SetMaxBuffered lowers the in-memory buffer for tests and returns a
// function that restores it.
func SetMaxBuffered(n int) func() {
	old := maxBuffered
	maxBuffered = n
	return func() { maxBuffered = old }
}
