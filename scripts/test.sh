#!/usr/bin/env bash
# The whole test suite, on a fresh Debian machine: installs what it needs (PostgreSQL from
# Debian's packages, Chromium for the browser tests, Dovecot from Debian and aiosmtpd from PyPI for mail), starts a throwaway PostgreSQL cluster owned
# by this run on 127.0.0.1, and runs every test — unit, property, store conformance and HTTP
# black-box against SQLite and PostgreSQL, then the end-to-end browser tests. If PostgreSQL or
# Chromium cannot start, it fails; it never skips.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*"; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

if [ -z "$(pg_bin)" ] || [ ! -x "$(pg_bin)/initdb" ]; then
    log "installing PostgreSQL from Debian's packages"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
PGBIN=$(pg_bin)
[ -x "$PGBIN/initdb" ] || { echo "PostgreSQL's initdb was not found after installing" >&2; exit 1; }

# The mail tests read mail from a real IMAP server: Dovecot from Debian's packages, one
# instance per test on 127.0.0.1 (the package's own service is not used).
if [ ! -x /usr/sbin/dovecot ]; then
    log "installing Dovecot (IMAP) from Debian's packages"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dovecot-imapd >/dev/null
fi

# The browser tests drive Debian's Chromium through Playwright (playwright-core from npm).
if [ ! -x /usr/bin/chromium ]; then
    log "installing Chromium from Debian's packages"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
if ! command -v npm >/dev/null; then
    log "installing Node.js and npm from Debian's packages"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi

# The mail tests talk to a real SMTP server: aiosmtpd from PyPI, in a virtual environment of
# this checkout (first on PATH, so the tests' `python3` finds it).
VENV="$PWD/target/test-venv"
if [ ! -x "$VENV/bin/python3" ] || ! "$VENV/bin/python3" -c 'import aiosmtpd' 2>/dev/null; then
    log "installing aiosmtpd from PyPI into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/python3" -m pip install --quiet --disable-pip-version-check 'aiosmtpd==1.4.6'
fi
export PATH="$VENV/bin:$PATH"

if ! command -v cargo >/dev/null; then
    echo "cargo is not installed: this machine kind ships the Rust toolchain" >&2
    exit 1
fi

PGROOT=$(mktemp -d /tmp/ferrodesk-pg.XXXXXX)
PGPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
# PostgreSQL refuses to run as root: the cluster belongs to the postgres user when we are root.
if [ "$(id -u)" = 0 ]; then
    chown postgres:postgres "$PGROOT"
    as_pg() { runuser -u postgres -- "$@"; }
else
    as_pg() { "$@"; }
fi
stop_pg() {
    as_pg "$PGBIN/pg_ctl" -D "$PGROOT/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$PGROOT"
}
trap stop_pg EXIT

log "starting a throwaway PostgreSQL on 127.0.0.1:$PGPORT"
as_pg "$PGBIN/initdb" -D "$PGROOT/data" -U postgres -A trust --no-sync -E UTF8 >/dev/null
if ! as_pg "$PGBIN/pg_ctl" -D "$PGROOT/data" -l "$PGROOT/server.log" -w -t 30 \
    -o "-p $PGPORT -k $PGROOT -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" start >/dev/null; then
    echo "PostgreSQL did not start; its log:" >&2
    cat "$PGROOT/server.log" >&2 || true
    exit 1
fi
export FERRODESK_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$PGPORT/postgres"

if [ "${CI:-}" = "true" ]; then
    export CARGO_INCREMENTAL=0
fi

log "cargo test (SQLite and PostgreSQL)"
cargo test --workspace --locked

log "browser tests (headless Chromium; screenshots into docs/screenshots)"
(cd e2e && npm ci --no-audit --no-fund --loglevel=error && FERRODESK_BIN="$PWD/../target/debug/ferrodesk" npm test --silent)
