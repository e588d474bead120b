# Sourced by scripts/test.sh (bash): start a throw-away PostgreSQL cluster
# for the tests and export PHR_TEST_DATABASE_URL; the cluster is stopped
# and its directory removed when the sourcing shell exits.
#
# - Does nothing when PHR_TEST_DATABASE_URL is already set (a database of
#   your own) or, outside CI, when no PostgreSQL is installed (the tests
#   that need one then skip and say so). Under CI a missing PostgreSQL is
#   an error (.ci/run installs it).
# - initdb refuses to run as root: as root the cluster belongs to the
#   system user "postgres" (Debian's package makes it), created here when
#   missing.
# - It listens on 127.0.0.1 only, on a random free port, with its socket
#   in its own directory; trust authentication for the one local user, no
#   fsync (the tests kill clients, never this server, and the data is
#   thrown away).

phr_pg_start() {
  if [ -n "${PHR_TEST_DATABASE_URL:-}" ]; then
    echo "PostgreSQL: using PHR_TEST_DATABASE_URL from the environment"
    return 0
  fi
  local bindir=""
  if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then
    bindir=$(pg_config --bindir)
  else
    bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  fi
  if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ] || [ ! -x "$bindir/pg_ctl" ]; then
    if [ -n "${CI:-}" ]; then
      echo "PostgreSQL is not installed (initdb not found), and CI needs it" >&2
      return 1
    fi
    echo "PostgreSQL: not installed; the tests that need it will skip"
    return 0
  fi

  local dir run=()
  dir=$(mktemp -d /tmp/phr-pg.XXXXXX)
  if [ "$(id -u)" = 0 ]; then
    if ! getent passwd postgres >/dev/null; then
      useradd --system --no-create-home --shell /usr/sbin/nologin postgres
    fi
    chown postgres "$dir"
    run=(runuser -u postgres --)
  fi
  chmod 700 "$dir"
  PHR_PG_DIR=$dir
  PHR_PG_CTL=("${run[@]}" "$bindir/pg_ctl")
  trap phr_pg_stop EXIT

  "${run[@]}" "$bindir/initdb" -D "$dir/data" -U phr --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
    "${run[@]}" "$bindir/initdb" -D "$dir/data" -U phr --auth=trust --encoding=UTF8 --no-locale >"$dir/initdb.log" 2>&1 || {
    cat "$dir/initdb.log" >&2
    return 1
  }
  local port attempt
  for attempt in 1 2 3 4 5 6 7 8; do
    port=$((20000 + RANDOM % 30000))
    if "${PHR_PG_CTL[@]}" -D "$dir/data" -l "$dir/server.log" -w -t 60 start \
      -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" >/dev/null 2>&1; then
      export PHR_TEST_DATABASE_URL="postgres://phr@127.0.0.1:$port/postgres?sslmode=disable"
      echo "PostgreSQL: throw-away cluster on 127.0.0.1:$port ($("$bindir/postgres" --version))"
      return 0
    fi
  done
  echo "PostgreSQL did not start:" >&2
  cat "$dir/server.log" >&2
  return 1
}

phr_pg_stop() {
  if [ -n "${PHR_PG_DIR:-}" ] && [ -d "$PHR_PG_DIR" ]; then
    "${PHR_PG_CTL[@]}" -D "$PHR_PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$PHR_PG_DIR"
    PHR_PG_DIR=""
  fi
}

phr_pg_start
