// Command phr is the patient's command line for an encrypted personal
// health record: log medications, doses, symptoms and vitals, browse and
// search them, import provider exports, and share.
//
// Exit codes: 0 success, 1 failure, 2 usage (bad flags, arguments or
// values; nothing was written).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
