#!/usr/bin/env bash
# The whole test suite: formatting, vet, staticcheck, unit/integration
# tests with the race detector, and a short run of every fuzz target.
set -euo pipefail
cd "$(dirname "$0")/.."

# A throw-away PostgreSQL for the tests of phrd's PostgreSQL backend
# (PHR_TEST_DATABASE_URL), stopped when this script exits.
source scripts/postgres.sh

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

echo "== go mod tidy check"
cp go.mod /tmp/phr-go.mod.bak; cp go.sum /tmp/phr-go.sum.bak
go mod tidy
if ! cmp -s go.mod /tmp/phr-go.mod.bak || ! cmp -s go.sum /tmp/phr-go.sum.bak; then
  echo "go mod tidy changes go.mod/go.sum"; diff /tmp/phr-go.mod.bak go.mod || true
  cp /tmp/phr-go.mod.bak go.mod; cp /tmp/phr-go.sum.bak go.sum; exit 1
fi

echo "== go vet"
go vet ./...

echo "== staticcheck"
go tool staticcheck ./...

echo "== go test"
go test -race -count=1 -timeout 20m ./...

echo "== memory-bound and long tests (skipped under the race detector, see internal/racedetect)"
go test -count=1 -timeout 10m -run '^(TestHeldBudgets|TestZipLimits|TestZipRealisticRatio|TestStreamLimits|TestTooManyEntries|TestLimits|TestEveryFileTwiceBothOrders)$' ./pkg/importers/...

echo "== fuzz (short run of every target)"
fuzztime=${FUZZTIME:-5s}
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    echo "-- $pkg $target"
    # A run that fails without writing a failing input (the fuzzer's own
    # "context deadline exceeded" on a loaded machine) is tried once more;
    # a real finding is written to testdata/fuzz and fails at once.
    for attempt in 1 2; do
      if go test -run="^$" -fuzz="^${target}\$" -fuzztime="$fuzztime" -fuzzminimizetime=2s "$pkg" >/tmp/phr-fuzz.log 2>&1; then
        break
      fi
      if grep -q "Failing input written" /tmp/phr-fuzz.log || [ "$attempt" = 2 ]; then
        cat /tmp/phr-fuzz.log; exit 1
      fi
      echo "   (fuzzer stopped without a finding; once more)"
    done
  done
done
echo "all checks passed"
