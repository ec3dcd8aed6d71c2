#!/usr/bin/env bash
# localstripe (PyPI, GPL-3.0-or-later) as a separate process for the Stripe
# connector's tests: never linked, never vendored, bound to 127.0.0.1 only.
#
# Usage:
#   scripts/localstripe.sh start   # installs if needed, starts, prints the URL
#   scripts/localstripe.sh stop    # stops the server this script started (by PID)
#   scripts/localstripe.sh url     # prints the URL of the running server
#
# The server is ../shared/vendor-specs/localstripe/run_localstripe.py (the
# recipe's wrapper): localstripe's own CLI binds every interface and shares
# /tmp/localstripe.pickle between runs; the wrapper serves the same app on
# 127.0.0.1 from an empty, in-memory store.
#
# Environment (defaults in brackets):
#   LOCALSTRIPE_CACHE   [${XDG_CACHE_HOME:-$HOME/.cache}/paywarden/localstripe]
#                       the virtualenv, the PID file and the log
#   LOCALSTRIPE_VERSION [1.15.10]  the version the recipe was checked with
#   LOCALSTRIPE_RUNNER  [<repo>/../shared/vendor-specs/localstripe/run_localstripe.py]
#
# Tests read LOCALSTRIPE_URL; REQUIRE_LOCALSTRIPE=1 makes its absence a failure:
#   export LOCALSTRIPE_URL=$(scripts/localstripe.sh start) REQUIRE_LOCALSTRIPE=1
#   cargo test --test api -- connectors::stripe_localstripe
#   scripts/localstripe.sh stop
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${LOCALSTRIPE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/paywarden/localstripe}
version=${LOCALSTRIPE_VERSION:-1.15.10}
runner=${LOCALSTRIPE_RUNNER:-$root/../shared/vendor-specs/localstripe/run_localstripe.py}
venv=$cache/venv
pid_file=$cache/server.pid
url_file=$cache/server.url
log_file=$cache/server.log

install() {
  mkdir -p "$cache"
  if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv" >&2
  fi
  if ! "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('localstripe') != '$version')" 2>/dev/null; then
    "$venv/bin/pip" install --quiet --disable-pip-version-check "localstripe==$version" >&2
  fi
}

running() {
  [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null
}

free_port() {
  "$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

start() {
  if running; then
    cat "$url_file"
    return
  fi
  [ -f "$runner" ] || { echo "localstripe.sh: no runner at $runner" >&2; exit 1; }
  install
  local port url
  port=$(free_port)
  url="http://127.0.0.1:$port"
  # setsid: the server outlives this script, in a process group of its own.
  setsid "$venv/bin/python" "$runner" "$port" >"$log_file" 2>&1 </dev/null &
  echo $! >"$pid_file"
  for _ in $(seq 1 100); do
    if "$venv/bin/python" -c "import urllib.request, sys
try:
    urllib.request.urlopen('$url/v1/balance', timeout=1)
except urllib.error.HTTPError:
    pass
" 2>/dev/null; then
      echo "$url" >"$url_file"
      echo "$url"
      return
    fi
    if ! running; then
      echo "localstripe.sh: the server exited; its log:" >&2
      cat "$log_file" >&2
      exit 1
    fi
    sleep 0.2
  done
  echo "localstripe.sh: the server did not answer on $url in 20 s" >&2
  stop
  exit 1
}

stop() {
  if running; then
    local pid
    pid=$(cat "$pid_file")
    kill "$pid"
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  fi
  rm -f "$pid_file" "$url_file"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  url) running && cat "$url_file" ;;
  *) echo "usage: $0 start|stop|url" >&2; exit 2 ;;
esac
