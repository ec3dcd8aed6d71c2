#!/usr/bin/env bash
# TLS policy scan of paywarden's HTTPS listener.
#
# Starts `paywarden serve --dev` on a free loopback port in a throw-away data
# dir, waits for /healthz, scans it with sslyze (JSON output) and openssl
# s_client, and checks the results against our policy with
# scripts/tls_policy.py (TLS 1.2/1.3 only, ECDHE+AEAD suites only, no
# renegotiation, no compression, ...). Prints a PASS/FAIL table; exits 0 only
# when every check passes. The server is always stopped on exit.
#
# Usage (from anywhere):
#   scripts/tls-scan.sh
#   PAYWARDEN_BIN=target/release/paywarden scripts/tls-scan.sh
# Environment:
#   PAYWARDEN_BIN     server binary (default: <repo>/target/debug/paywarden;
#                     built with `cargo build` if that default is missing)
#   PYTHON            Python 3 interpreter (default: python3); sslyze, pinned
#                     to SSLYZE_VERSION below, is installed into it with pip
#                     when it is missing or another version is installed
#   TLS_SCAN_KEEP=1   keep the temp dir (sslyze JSON, server logs) for debugging
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
bin=${PAYWARDEN_BIN:-${CARGO_TARGET_DIR:-$repo/target}/debug/paywarden}
host=127.0.0.1

log() { printf 'tls-scan: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 2; }

for tool in openssl curl "$PYTHON"; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found"
done

# sslyze, pinned: its JSON output is what tls_policy.py reads, and a new
# release must not change the scan under us. Installed with pip when missing
# or of another version.
SSLYZE_VERSION=6.3.1
installed=$("$PYTHON" -c 'import importlib.metadata as m; print(m.version("sslyze"))' 2>/dev/null || true)
if [ "$installed" != "$SSLYZE_VERSION" ]; then
  log "installing sslyze==$SSLYZE_VERSION with pip (found: ${installed:-none})"
  "$PYTHON" -m pip install --quiet --disable-pip-version-check "sslyze==$SSLYZE_VERSION" >&2 \
    || die "pip install sslyze==$SSLYZE_VERSION failed"
fi

# Server binary.
if [ ! -x "$bin" ]; then
  if [ -z "${PAYWARDEN_BIN:-}" ]; then
    log "building $bin"
    (cd "$repo" && cargo build --quiet --bin paywarden) || die "cargo build failed"
  fi
  [ -x "$bin" ] || die "server binary not found: $bin (set PAYWARDEN_BIN)"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/paywarden-tls-scan.XXXXXX")
server_pid=""
cleanup() {
  local rc=$?
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [ "${TLS_SCAN_KEEP:-0}" = 1 ]; then log "kept $work"; else rm -rf "$work"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A free loopback port (the OS picks one; the tiny race with another process is acceptable here).
port=$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')

# The server reads PAYWARDEN_* variables as configuration and rejects unknown
# keys (PAYWARDEN_BIN would be one), and a PAYWARDEN_DATABASE_URL or
# PAYWARDEN_TLS__* from the caller's shell would change what is scanned: start
# it with none of them, so the scan is hermetic. That drops PAYWARDEN_LOG too
# (the log filter, which is not configuration): the server logs at its default
# level, to $work/server.err (kept with TLS_SCAN_KEEP=1).
unset_args=()
while IFS= read -r name; do unset_args+=(-u "$name"); done < <(compgen -e | grep '^PAYWARDEN_' || true)

log "starting $bin on $host:$port (data dir $work/data)"
env ${unset_args[@]+"${unset_args[@]}"} "$bin" serve --dev --data-dir "$work/data" --listen "$host:$port" \
  >"$work/server.out" 2>"$work/server.err" </dev/null &
server_pid=$!

# Wait (at most 30 s) for /healthz.
ready=0
for _ in $(seq 1 150); do
  if ! kill -0 "$server_pid" 2>/dev/null; then
    log "server exited early; its stderr:"; tail -n 20 "$work/server.err" >&2; exit 2
  fi
  if curl -sk --max-time 2 -o /dev/null -w '%{http_code}' "https://$host:$port/healthz" 2>/dev/null | grep -q '^200$'; then
    ready=1; break
  fi
  sleep 0.2
done
[ "$ready" = 1 ] || { log "server not ready after 30 s; its stderr:"; tail -n 20 "$work/server.err" >&2; exit 2; }
cert="$work/data/dev-tls/cert.pem"
[ -f "$cert" ] || die "dev certificate not found at $cert"

log "running sslyze"
# Every scan we evaluate, plus the cheap implementation-bug checks. 120 s cap.
set +e
timeout 120 "$PYTHON" -m sslyze --quiet --json_out="$work/sslyze.json" \
  --sslv2 --sslv3 --tlsv1 --tlsv1_1 --tlsv1_2 --tlsv1_3 \
  --reneg --compression --early_data --elliptic_curves --fallback --ems \
  --heartbleed --openssl_ccs --robot \
  "$host:$port" >"$work/sslyze.out" 2>&1
sslyze_rc=$?
set -e
if [ "$sslyze_rc" -ne 0 ]; then
  log "sslyze exited with $sslyze_rc:"; tail -n 20 "$work/sslyze.out" >&2
fi

set +e
"$PYTHON" "$repo/scripts/tls_policy.py" --sslyze-json "$work/sslyze.json" --host "$host" --port "$port" --cafile "$cert"
policy_rc=$?
set -e

if [ "$sslyze_rc" -ne 0 ] || [ "$policy_rc" -ne 0 ]; then
  exit 1
fi
exit 0
