#!/usr/bin/env bash
# HTTP throughput/latency benchmark of paywarden with wrk, over HTTPS keep-alive
# (HTTP/1.1, TLS) on loopback, against a release build.
#
# For each backend (SQLite, and PostgreSQL when reachable) a fresh server is
# started in a throw-away data dir; the test secret key is read from its
# first-start banner; both endpoints are warmed up; then wrk measures
#   * GET /healthz                                   (bare: TLS + routing + middleware)
#   * GET /v1/merchant  Authorization: Bearer sk_... (key lookup + audit-log write)
#   * POST /v1/tokens   (publishable key)            (vault seal + durable commit + audit)
#   * POST /v1/payments (confirm: true, automatic capture, sandbox connector)
#   * the same for a second merchant with an active rule set of 50 rules
#     (every velocity fact, BIN, IP country, a list; none matching), with a
#     customer IP and e-mail address, so every confirm is screened and reads
#     and writes its velocity signals
#   * POST /v1/refunds  (1 minor unit of one large payment per request)
# in rounds (BENCH_ROUNDS, default 3): each endpoint is measured between two
# runs of the bare endpoint, and its ratio is taken to the mean of those two,
# so a change of the machine's speed during the run (a VM's neighbours) moves
# both sides of a ratio alike; the report gives each ratio's median over the
# rounds and its range. The order of the endpoints rotates between backends.
# Then, for payments, examples/loadgen.rs
# (open loop: one request every 1/rate s, latency counted from when each was
# due) holds half of the measured payment throughput and reports p50/p99;
# last, webhook fan-out: endpoints subscribed to payment.succeeded on a local
# receiver (examples/webhook_sink.rs, which verifies every signature), a burst
# of payments, and deliveries per second from the first to the last arrival;
# like every endpoint, the burst runs between two runs of the bare endpoint
# and its ratio is taken to their mean. Reports requests/s, p50/p99 latency
# and each endpoint's throughput as a ratio of the bare endpoint's, as a
# markdown table written to docs/benchmarks.md and printed.
#
# Usage:  scripts/bench.sh                       # 3 rounds, 5 s per measurement
#         BENCH_SECONDS=5 scripts/bench.sh
# Environment (defaults in brackets):
#   BENCH_SECONDS [5]          duration of each measured wrk run
#   BENCH_ROUNDS [3]           rounds of measurements (bare, endpoint, bare, endpoint, ..., bare)
#   BENCH_HALF_SECONDS [10]    duration of the fixed-rate payment run at half load
#   BENCH_WARMUP_SECONDS [3]   duration of the warm-up run of each endpoint
#   BENCH_THREADS [2]          wrk threads
#   BENCH_CONNECTIONS [32]     wrk connections (keep-alive)
#   BENCH_BACKENDS ["sqlite postgres"]  postgres is skipped if not reachable
#   BENCH_FANOUT_ENDPOINTS [4] BENCH_FANOUT_RATE [1000] BENCH_FANOUT_SECONDS [3]
#                              webhook fan-out: endpoints, payment rate and duration of the burst
#   BENCH_FANOUT_TIMEOUT [180] longest wait for every delivery to arrive
#   BENCH_PG_HOST [127.0.0.1] BENCH_PG_PORT [5432] BENCH_PG_USER [postgres] BENCH_PG_DB [test]
#   BENCH_OUT [docs/benchmarks.md]
#   PAYWARDEN_BIN              binary to benchmark; when set, no build is done
#                              [default: cargo build --release; target/release/paywarden]
#
# The machine has 2 cores and wrk shares them with the server: the numbers are
# for comparing revisions and the two endpoints on the same machine, not
# absolute capacity.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

secs=${BENCH_SECONDS:-5}
rounds=${BENCH_ROUNDS:-3}
half_secs=${BENCH_HALF_SECONDS:-10}
fanout=${BENCH_FANOUT_ENDPOINTS:-4}
fan_rate=${BENCH_FANOUT_RATE:-1000}
fan_secs=${BENCH_FANOUT_SECONDS:-3}
fan_timeout=${BENCH_FANOUT_TIMEOUT:-180}
warmup=${BENCH_WARMUP_SECONDS:-3}
threads=${BENCH_THREADS:-2}
conns=${BENCH_CONNECTIONS:-32}
backends=${BENCH_BACKENDS:-sqlite postgres}
pg_host=${BENCH_PG_HOST:-127.0.0.1}
pg_port=${BENCH_PG_PORT:-5432}
pg_user=${BENCH_PG_USER:-postgres}
pg_db=${BENCH_PG_DB:-test}
out_md=${BENCH_OUT:-$repo/docs/benchmarks.md}
host=127.0.0.1

log() { printf 'bench: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

for v in "$secs" "$rounds" "$half_secs" "$warmup" "$threads" "$conns"; do
  [[ "$v" =~ ^[0-9]+$ ]] && [ "$v" -gt 0 ] || die "BENCH_SECONDS/ROUNDS/WARMUP/THREADS/CONNECTIONS must be positive integers"
done

# --- tools ------------------------------------------------------------------
if ! command -v wrk >/dev/null 2>&1; then
  log "installing wrk (apt-get)"
  if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq wrk >&2 \
    || die "cannot install wrk"
fi
log "cargo build --release --example loadgen --example webhook_sink"
cargo build --release --quiet --example loadgen --example webhook_sink >&2 \
  || die "cannot build the fixed-rate load generator and the webhook sink"
loadgen=${CARGO_TARGET_DIR:-$repo/target}/release/examples/loadgen
sink=${CARGO_TARGET_DIR:-$repo/target}/release/examples/webhook_sink
for tool in curl python3; do command -v "$tool" >/dev/null 2>&1 || die "$tool not found"; done

# --- binary -----------------------------------------------------------------
if [ -n "${PAYWARDEN_BIN:-}" ]; then
  bin=$PAYWARDEN_BIN
else
  log "cargo build --release"
  cargo build --release --quiet --bin paywarden >&2 || die "cargo build --release failed"
  bin=${CARGO_TARGET_DIR:-$repo/target}/release/paywarden
fi
[ -x "$bin" ] || die "server binary not found: $bin"

# --- state and cleanup --------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/paywarden-bench.XXXXXX")
server_pid=""
sink_pid=""
pg_schema=""
stop_sink() {
  if [ -n "$sink_pid" ]; then kill "$sink_pid" 2>/dev/null || true; wait "$sink_pid" 2>/dev/null || true; sink_pid=""; fi
}
stop_server() {
  if [ -n "$server_pid" ]; then
    if kill -0 "$server_pid" 2>/dev/null; then
      kill -TERM "$server_pid" 2>/dev/null || true
      for _ in $(seq 1 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$server_pid" 2>/dev/null || true
    fi
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  fi
}
psql_() { PGCONNECT_TIMEOUT=3 psql -X -q -v ON_ERROR_STOP=1 -h "$pg_host" -p "$pg_port" -U "$pg_user" -d "$pg_db" "$@"; }
cleanup() {
  local rc=$?
  stop_sink
  stop_server
  if [ -n "$pg_schema" ]; then psql_ -c "drop schema if exists $pg_schema cascade" >/dev/null 2>&1 || true; fi
  [ -n "${BENCH_KEEP:-}" ] || rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The server reads every PAYWARDEN_* variable as configuration and rejects
# unknown keys; start it with none from the caller's shell (PAYWARDEN_BIN,
# a stray PAYWARDEN_DATABASE_URL, ...).
unset_args=()
while IFS= read -r name; do unset_args+=(-u "$name"); done < <(compgen -e | grep '^PAYWARDEN_' || true)

log_note=""   # filled if PAYWARDEN_LOG=warn is rejected by the build

# start_server NAME [--database-url URL]: starts a fresh server, sets $port and $key.
start_server() {
  local name=$1; shift
  server_args=("$@")
  local dir=$work/$name
  mkdir -p "$dir"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
  local attempt
  for attempt in warn default; do
    rm -rf "$dir/data"
    local logenv=()
    [ "$attempt" = warn ] && logenv=(PAYWARDEN_LOG=warn)
    # wrk tokenizes from one address at thousands a second, which the
    # tokenization limits refuse by design: they are set far above the load,
    # so their buckets are taken from on every request but never run dry.
    local limits=(
      PAYWARDEN_RATE_LIMITS__TOKENIZE_PER_PUBLISHABLE_KEY__BURST=4000000000
      PAYWARDEN_RATE_LIMITS__TOKENIZE_PER_PUBLISHABLE_KEY__PER_MINUTE=4000000000
      PAYWARDEN_RATE_LIMITS__TOKENIZE_PER_CLIENT_IP__BURST=4000000000
      PAYWARDEN_RATE_LIMITS__TOKENIZE_PER_CLIENT_IP__PER_MINUTE=4000000000
    )
    env ${unset_args[@]+"${unset_args[@]}"} ${logenv[@]+"${logenv[@]}"} "${limits[@]}" \
      "$bin" serve --dev --data-dir "$dir/data" --listen "$host:$port" "$@" \
      >"$dir/server.out" 2>"$dir/server.err" </dev/null &
    server_pid=$!
    local ready=0
    for _ in $(seq 1 150); do
      kill -0 "$server_pid" 2>/dev/null || break
      if curl -sk --max-time 2 -o /dev/null -w '%{http_code}' "https://$host:$port/healthz" 2>/dev/null | grep -q '^200$'; then
        ready=1; break
      fi
      sleep 0.2
    done
    if [ "$ready" = 1 ]; then break; fi
    stop_server
    if [ "$attempt" = warn ] && grep -q 'PAYWARDEN_' "$dir/server.err" && grep -qi 'LOG' "$dir/server.err"; then
      log "this build rejects PAYWARDEN_LOG=warn as an unknown configuration key; running at its default log level"
      log_note="PAYWARDEN_LOG=warn was rejected by this build (read as a configuration key), so the server ran at its default log level (info; it logs no line per request)."
      continue
    fi
    log "server ($name) did not become ready; its stderr:"; tail -n 20 "$dir/server.err" >&2
    exit 1
  done
  cert=$dir/data/dev-tls/cert.pem
  key=$(grep -o 'sk_test_[A-Za-z0-9]*' "$dir/server.out" | head -n 1 || true)
  pkey=$(grep -o 'pk_test_[A-Za-z0-9]*' "$dir/server.out" | head -n 1 || true)
  [ -n "$key" ] || die "no 'Test secret key: sk_test_...' line in the banner of the $name server"
  local code
  code=$(curl -sk --max-time 5 -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $key" "https://$host:$port/v1/merchant")
  [ "$code" = 200 ] || die "GET /v1/merchant with the banner key returned HTTP $code ($name)"
}

# run_wrk LABEL DURATION URL [wrk args...]: output to $work/LABEL.txt
run_wrk() {
  local label=$1 dur=$2 url=$3; shift 3
  wrk -t"$threads" -c"$conns" -d"${dur}s" --timeout 10s --latency "$@" "$url" >"$work/$label.txt" 2>&1 \
    || { cat "$work/$label.txt" >&2; die "wrk failed ($label)"; }
}

# --- runs -------------------------------------------------------------------
ran=()
i=0
for backend in $backends; do
  case $backend in
    sqlite)
      log "sqlite: starting server"
      start_server sqlite
      ;;
    postgres)
      if ! command -v psql >/dev/null 2>&1 || ! psql_ -Atc 'select 1' >/dev/null 2>&1; then
        log "postgres: not reachable at $pg_user@$pg_host:$pg_port/$pg_db; skipped"
        continue
      fi
      pg_schema="bench_$(date +%s)_$$"
      psql_ -c "create schema $pg_schema" >/dev/null
      log "postgres: starting server (schema $pg_schema)"
      start_server postgres --database-url "postgres://$pg_user@$pg_host:$pg_port/$pg_db?options=-c%20search_path%3D$pg_schema"
      ;;
    *) die "unknown backend '$backend' (sqlite, postgres)";;
  esac

  bare_url="https://$host:$port/healthz"
  auth_url="https://$host:$port/v1/merchant"
  tokens_url="https://$host:$port/v1/tokens"
  payments_url="https://$host:$port/v1/payments"
  refunds_url="https://$host:$port/v1/refunds"
  api() { curl -sk --max-time 10 -H "Authorization: Bearer $key" -H 'Content-Type: application/json' "$@"; }
  # One token serves every payment (its CVC goes with the first authorization).
  tok=$(api "$tokens_url" -d '{"card":{"number":"4242424242424242","exp_month":12,"exp_year":2034,"cvc":"123"}}' \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])') || die "cannot create a token ($backend)"
  # One large payment to refund one minor unit at a time.
  big=$(api "$payments_url" -d "{\"amount\":99999999,\"currency\":\"usd\",\"payment_method\":\"$tok\",\"confirm\":true}" \
    | python3 -c 'import json,sys; p=json.load(sys.stdin); assert p["status"]=="succeeded", p; print(p["id"])') \
    || die "cannot create the payment to refund ($backend)"
  payment_body="{\"amount\":1999,\"currency\":\"usd\",\"payment_method\":\"$tok\",\"confirm\":true}"
  # A second merchant (made with the CLI against the same database) with a
  # 50-rule set that matches none of its payments: what screening costs.
  cli() { env ${unset_args[@]+"${unset_args[@]}"} "$bin" --dev --data-dir "$work/$backend/data" ${server_args[@]+"${server_args[@]}"} --json "$@"; }
  rules_merchant=$(cli merchant create --name "Bench rules" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])') \
    || die "cannot create the rules merchant ($backend)"
  rules_key=$(cli key create --merchant "$rules_merchant" --kind secret \
    | python3 -c 'import json,sys; k=json.load(sys.stdin); print(k.get("secret") or k["key"])') \
    || die "cannot issue the rules merchant's key ($backend)"
  rapi() { curl -sk --max-time 10 -H "Authorization: Bearer $rules_key" -H 'Content-Type: application/json' "$@"; }
  rapi "https://$host:$port/v1/fraud/lists/blocked_emails" -d '{"values":["fraud@example.com","chargeback@example.net"]}' >/dev/null \
    || die "cannot create the rules merchant's list ($backend)"
  rules_json=$(python3 -c '
import json
r = [f"rule v{i} : block when velocity.{a} > 100000" for i, a in enumerate(
    "card_payments_1h card_payments_24h card_declines_1h card_declines_24h ip_payments_1h ip_payments_24h "
    "ip_declines_1h ip_declines_24h ip_distinct_cards_1h ip_distinct_cards_24h email_payments_1h email_payments_24h".split())]
r += [f"rule big{i} : score {i + 1} when amount > {50_000_000 + i}" for i in range(20)]
r += ["rule prepaid : review when card.funding == \"prepaid\"",
      "rule far_card : score 30 when card.country in [\"ng\", \"kp\", \"ir\"]",
      "rule far_ip : score 30 when customer.ip_country in [\"ng\", \"kp\", \"ir\"]",
      "rule mismatch : score 10 when card.country == \"us\" and customer.ip_country == \"ru\"",
      "rule blocked : block when customer.email in @blocked_emails",
      "rule domain : score 20 when customer.email_domain in [\"mailinator.com\", \"guerrillamail.com\"]",
      "rule brand : score 5 when card.brand == \"unionpay\" and amount > 1_000_000",
      "rule bin : block when card.bin starts_with \"999\"",
      "rule cur : score 5 when currency in [\"ngn\", \"vnd\"]",
      "rule new_big : score 40 when card.first_use == true and amount > 10_000_000",
      "rule manual : score 5 when capture_method == \"manual\" and amount > 10_000_000",
      "rule usual : score 20 when amount_vs_usual_pct > 100_000",
      "rule live : score 1 when is_livemode == true and amount > 99_000_000",
      "rule ip : block when customer.ip == \"192.0.2.250\"",
      "rule last4 : score 1 when card.last4 == \"0000\" and amount > 90_000_000",
      "rule email : block when customer.email == \"mallory@example.com\"",
      "rule neg : score -5 when amount < 0",
      "rule many : review when velocity.card_payments_24h > 100000 and velocity.ip_payments_24h > 100000"]
assert len(r) == 50, len(r)
print(json.dumps({"rules": "\n".join(r)}))')
  code=$(rapi -o "$work/rules.out" -w '%{http_code}' "https://$host:$port/v1/fraud/rules" -d "$rules_json")
  [ "$code" = 200 ] || { cat "$work/rules.out" >&2; die "cannot save the 50 rules ($backend)"; }
  rules_tok=$(rapi "$tokens_url" -d '{"card":{"number":"4242424242424242","exp_month":12,"exp_year":2034,"cvc":"123"}}' \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])') || die "cannot create the rules merchant's token ($backend)"
  rules_body="{\"amount\":1999,\"currency\":\"usd\",\"payment_method\":\"$rules_tok\",\"confirm\":true,\"customer_ip\":\"8.8.8.8\",\"customer_email\":\"jenny@example.com\"}"
  rapi "$payments_url" -d "$rules_body" | python3 -c 'import json,sys; p=json.load(sys.stdin); assert p["status"]=="succeeded" and p["risk"]["decision"]=="allow", p' \
    || die "a payment of the rules merchant was not allowed ($backend)"
  # POST /v1/tokens with the publishable key, as the hosted card fields page
  # does, without a CVC: the in-memory CVC holder is bounded (100,000 CVCs,
  # each kept until its first authorization or 10 minutes) and answers 503
  # when full, which a benchmark of a hundred thousand tokenizations reaches.
  cat >"$work/tokenize.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $pkey"
wrk.body = '{"card":{"number":"4242424242424242","exp_month":12,"exp_year":2034}}'
LUA
  cat >"$work/payment.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $key"
wrk.body = '$payment_body'
LUA
  cat >"$work/payment_rules.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $rules_key"
wrk.body = '$rules_body'
LUA
  cat >"$work/refund.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $key"
wrk.body = '{"payment":"$big","amount":1}'
LUA
  measure() {
    case $1 in
      bare) run_wrk "$2" "$3" "$bare_url";;
      auth) run_wrk "$2" "$3" "$auth_url" -H "Authorization: Bearer $key";;
      tokenize) run_wrk "$2" "$3" "$tokens_url" -s "$work/tokenize.lua";;
      payment) run_wrk "$2" "$3" "$payments_url" -s "$work/payment.lua";;
      payment_rules) run_wrk "$2" "$3" "$payments_url" -s "$work/payment_rules.lua";;
      refund) run_wrk "$2" "$3" "$refunds_url" -s "$work/refund.lua";;
    esac
  }
  endpoints="bare auth tokenize payment payment_rules refund"
  log "$backend: warm-up ${warmup}s per endpoint"
  for ep in $endpoints; do measure "$ep" "$backend-warm-$ep" "$warmup"; done

  # Rotate which endpoint goes first from one backend to the next; in each
  # round every endpoint runs between two runs of the bare one.
  measured="auth tokenize payment payment_rules refund"
  order=$(python3 -c "import sys; e=sys.argv[1].split(); k=$i % len(e); print(' '.join(e[k:] + e[:k]))" "$measured")
  for k in $(seq 1 "$rounds"); do
    log "$backend: round $k of $rounds (${secs}s per measurement)"
    measure bare "$backend-bare-r$k-0" "$secs"
    j=0
    for ep in $order; do
      j=$((j + 1))
      measure "$ep" "$backend-$ep-r$k" "$secs"
      measure bare "$backend-bare-r$k-$j" "$secs"
    done
  done
  # Latency at half of the measured payment throughput (median of the rounds), at a fixed rate.
  rate=$(python3 -c "
import re, statistics, sys
rps = [float(re.search(r'^Requests/sec:\s+([\d.]+)', open(f).read(), re.M).group(1)) for f in sys.argv[1:]]
print(max(1, int(statistics.median(rps) / 2)))" "$work/$backend"-payment-r*.txt)
  "$loadgen" --url "$payments_url" --rate "$rate" --seconds "$half_secs" --ca "$cert" \
    --header "Authorization: Bearer $key" --header "Content-Type: application/json" --body "$payment_body" \
    >"$work/$backend-payment-half.txt" 2>&1 || { cat "$work/$backend-payment-half.txt" >&2; die "loadgen failed"; }
  # Webhook fan-out: endpoints subscribed to payment.succeeded on a local
  # receiver that verifies every signature; a burst of payments, then the
  # time until every delivery has arrived.
  sink_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
  : >"$work/$backend-secrets"
  "$sink" --listen "$host:$sink_port" --secrets-file "$work/$backend-secrets" >"$work/$backend-sink.out" 2>&1 &
  sink_pid=$!
  for _ in $(seq 1 50); do curl -s --max-time 1 -o /dev/null "http://$host:$sink_port/count" && break; sleep 0.1; done
  for n in $(seq 1 "$fanout"); do
    api "https://$host:$port/v1/webhook_endpoints" \
      -d "{\"url\":\"http://$host:$sink_port/hook/$n\",\"events\":[\"payment.succeeded\"]}" \
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["secret"])' >>"$work/$backend-secrets" \
      || die "cannot register webhook endpoint $n ($backend)"
  done
  # The burst runs between two bare runs, like every measured endpoint.
  measure bare "$backend-bare-fanout-0" "$secs"
  log "$backend: webhook fan-out to $fanout endpoints, payments at $fan_rate req/s for ${fan_secs}s"
  "$loadgen" --url "$payments_url" --rate "$fan_rate" --seconds "$fan_secs" --ca "$cert" \
    --header "Authorization: Bearer $key" --header "Content-Type: application/json" --body "$payment_body" \
    >"$work/$backend-fanout-load.txt" 2>&1 || { cat "$work/$backend-fanout-load.txt" >&2; die "loadgen failed"; }
  expected=$(( fanout * $(sed -n 's/.*ok=\([0-9]*\).*/\1/p' "$work/$backend-fanout-load.txt") ))
  deadline=$(( $(date +%s) + fan_timeout ))
  while :; do
    count=$(curl -s --max-time 2 "http://$host:$sink_port/count" || true)
    got=$(sed -n 's/^deliveries=\([0-9]*\).*/\1/p' <<<"$count")
    if [ "${got:-0}" -ge "$expected" ] || [ "$(date +%s)" -ge "$deadline" ]; then break; fi
    sleep 0.5
  done
  echo "expected=$expected $count" >"$work/$backend-fanout.txt"
  measure bare "$backend-bare-fanout-1" "$secs"
  stop_sink
  stop_server
  if [ "$backend" = postgres ]; then psql_ -c "drop schema if exists $pg_schema cascade" >/dev/null 2>&1 || true; pg_schema=""; fi
  ran+=("$backend:${order// /,}")
  i=$((i + 1))
done
[ "${#ran[@]}" -gt 0 ] || die "no backend was benchmarked"

# --- report -----------------------------------------------------------------
commit=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$repo" status --porcelain --untracked-files=no -- src Cargo.toml Cargo.lock migrations 2>/dev/null)" ]; then
  commit="$commit (with uncommitted changes under src/)"
fi
if [ -n "${PAYWARDEN_BIN:-}" ]; then
  commit="HEAD $commit; binary given by PAYWARDEN_BIN ($bin, built $(date -u -r "$bin" '+%Y-%m-%d %H:%M UTC')), which may be of another revision"
fi
cpu=$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //' || true)
mkdir -p "$(dirname "$out_md")"

BENCH_WORK=$work BENCH_RAN="${ran[*]}" BENCH_COMMIT=$commit BENCH_CPU=${cpu:-unknown} BENCH_NPROC=$(nproc) \
BENCH_SECS=$secs BENCH_HALF_SECS=$half_secs BENCH_ROUNDS=$rounds BENCH_WARM=$warmup BENCH_FANOUT=$fanout BENCH_FANOUT_RATE=$fan_rate BENCH_FANOUT_SECONDS=$fan_secs BENCH_T=$threads BENCH_C=$conns BENCH_LOGNOTE=$log_note \
BENCH_WRK="$(wrk --version 2>&1 | head -n 1 | sed 's/ Copyright.*//' || true)" \
BENCH_BUILD="$([ -n "${PAYWARDEN_BIN:-}" ] && echo "binary $bin (PAYWARDEN_BIN)" || echo "release profile (\`cargo build --release\`)"), $(rustc --version 2>/dev/null || echo 'rustc unknown')" \
python3 - "$out_md" <<'PY'
import os, re, sys, datetime, statistics

env = os.environ
work = env["BENCH_WORK"]
unit = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0, "h": 3600000.0}

def ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    return float(m.group(1)) * unit[m.group(2)] if m else float("nan")

def parse(label):
    t = open(os.path.join(work, label + ".txt"), encoding="utf-8").read()
    rps = float(re.search(r"^Requests/sec:\s+([\d.]+)", t, re.M).group(1))
    p50 = ms(re.search(r"^\s+50%\s+(\S+)", t, re.M).group(1))
    p99 = ms(re.search(r"^\s+99%\s+(\S+)", t, re.M).group(1))
    total = int(re.search(r"^\s+(\d+) requests in", t, re.M).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", t)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", t)
    errors = (int(non2xx.group(1)) if non2xx else 0) + (sum(int(x) for x in sock.groups()) if sock else 0)
    return {"rps": rps, "p50": p50, "p99": p99, "total": total, "errors": errors}

def parse_fanout(backend):
    f = dict(kv.split("=", 1) for kv in open(os.path.join(work, f"{backend}-fanout.txt"), encoding="utf-8").read().split())
    load = parse_loadgen(f"{backend}-fanout-load")
    got, first, last = int(f.get("deliveries", 0)), int(f.get("first_ms", 0)), int(f.get("last_ms", 0))
    seconds = max(last - first, 1) / 1000.0
    # The bare runs just before and after the burst, as for every endpoint.
    bare = [parse(f"{backend}-bare-fanout-{j}") for j in (0, 1)]
    return {"expected": int(f["expected"]), "got": got, "bad": int(f.get("bad_signatures", 0)),
            "payments": load["total"] - load["errors"], "endpoints": int(env["BENCH_FANOUT"]),
            "rate": got / seconds, "seconds": seconds, "bare_runs": bare,
            "bare_mean": (bare[0]["rps"] + bare[1]["rps"]) / 2}

def fmt_ms(v):
    return f"{v:.2f} ms" if v < 100 else f"{v:.0f} ms"

def parse_loadgen(label):
    t = open(os.path.join(work, label + ".txt"), encoding="utf-8").read()
    f = dict(kv.split("=", 1) for kv in t.split())
    return {"rps": float(f["rate"]), "p50": float(f["p50_ms"]), "p99": float(f["p99_ms"]),
            "total": int(f["sent"]), "errors": int(f["errors"])}

ENDPOINTS = (
    ("bare", "`GET /healthz` (bare)"),
    ("auth", "`GET /v1/merchant` (bearer key, audited)"),
    ("tokenize", "`POST /v1/tokens` (publishable key, no CVC; sealed, durable commit, audited)"),
    ("payment", "`POST /v1/payments` (confirm, sandbox, automatic capture; durable commit, events, audited)"),
    ("payment_rules", "`POST /v1/payments` as above, screened by 50 fraud rules (velocity signals read and written)"),
    ("refund", "`POST /v1/refunds` (1 unit of a succeeded payment; durable commit, event, audited)"),
)
names = {"sqlite": "SQLite", "postgres": "PostgreSQL"}
rows, ratios, halves, fans, bad, costs = [], [], [], [], [], []
rounds = int(env["BENCH_ROUNDS"])

def combine(runs):
    """One row from several runs of an endpoint: medians of rate and latency, sums of counts."""
    return {"rps": statistics.median(x["rps"] for x in runs), "p50": statistics.median(x["p50"] for x in runs),
            "p99": statistics.median(x["p99"] for x in runs), "total": sum(x["total"] for x in runs),
            "errors": sum(x["errors"] for x in runs)}

for item in env["BENCH_RAN"].split():
    backend, order = item.split(":", 1)
    order = order.split(",")
    runs = {ep: [parse(f"{backend}-{ep}-r{k}") for k in range(1, rounds + 1)] for ep in order}
    bare_runs = {(k, j): parse(f"{backend}-bare-r{k}-{j}") for k in range(1, rounds + 1) for j in range(len(order) + 1)}
    fan = parse_fanout(backend)
    runs["bare"] = list(bare_runs.values()) + fan["bare_runs"]
    # Each run of an endpoint against the mean of the bare runs just before and after it.
    per_round = {ep: [runs[ep][k - 1]["rps"] / ((bare_runs[(k, j)]["rps"] + bare_runs[(k, j + 1)]["rps"]) / 2)
                      for k in range(1, rounds + 1)]
                 for j, ep in enumerate(order)}
    r = {ep: combine(v) for ep, v in runs.items()}
    for ep, path in ENDPOINTS:
        x = r[ep]
        rows.append(f"| {names[backend]} | {path} | {x['rps']:,.0f} | {fmt_ms(x['p50'])} | {fmt_ms(x['p99'])} | {x['total']:,} | {x['errors']} |")
        if x["errors"]:
            bad.append(f"{names[backend]} {ep}: {x['errors']} non-2xx responses or socket errors")
    half = parse_loadgen(f"{backend}-payment-half")
    if half["errors"]:
        bad.append(f"{names[backend]} payments at half load: {half['errors']} non-200 responses or errors")
    halves.append(f"| {names[backend]} | {half['rps']:,.0f} | {fmt_ms(half['p50'])} | {fmt_ms(half['p99'])} | {half['total']:,} | {half['errors']} |")
    def ratio(ep):
        v = per_round[ep]
        return f"{statistics.median(v):.3f} ({min(v):.3f}–{max(v):.3f})" if len(v) > 1 else f"{v[0]:.3f}"
    if fan["got"] < fan["expected"] or fan["bad"]:
        bad.append(f"{names[backend]} webhook fan-out: {fan['got']} of {fan['expected']} deliveries, {fan['bad']} bad signatures")
    fans.append(f"| {names[backend]} | {fan['endpoints']} | {fan['payments']:,} | {fan['got']:,} of {fan['expected']:,} | "
                f"{fan['rate']:,.0f} | {fan['seconds']:.1f} s | {fan['bad']} |")
    rules_cost = [1 - per_round["payment_rules"][k] / per_round["payment"][k] for k in range(rounds)]
    costs.append(f"| {names[backend]} | {statistics.median(rules_cost) * 100:.1f}% "
                 f"({min(rules_cost) * 100:.1f}%–{max(rules_cost) * 100:.1f}%) |")
    ratios.append(f"| {names[backend]} | {ratio('auth')} | {ratio('tokenize')} | {ratio('payment')} | {ratio('payment_rules')} | {ratio('refund')} | "
                  f"{fan['rate'] / fan['bare_mean']:.3f} | bare → {' → bare → '.join(order)} → bare; bare → fan-out → bare |")

now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
lines = [
    "# Benchmarks",
    "",
    "Generated by `scripts/bench.sh`; rerun it to refresh this file.",
    "",
    f"- Date: {now}",
    f"- Commit: {env['BENCH_COMMIT']}",
    f"- Machine: {env['BENCH_NPROC']} CPUs (`nproc`), {env['BENCH_CPU']}; wrk and the server share them",
    f"- Build: {env['BENCH_BUILD']}",
    f"- Load: {env['BENCH_WRK']}, {env['BENCH_T']} threads, {env['BENCH_C']} keep-alive connections, "
    f"{env['BENCH_ROUNDS']} rounds of {env['BENCH_SECS']} s per measurement after a {env['BENCH_WARM']} s warm-up of each endpoint; "
    "HTTPS (HTTP/1.1 over TLS, self-signed dev certificate) on 127.0.0.1",
    "- Server: `paywarden serve --dev`, fresh data dir per backend (PostgreSQL: fresh schema), `PAYWARDEN_LOG=warn`; tokenization limits set far above the load (their buckets are consulted on every request, never run dry)",
]
if env.get("BENCH_LOGNOTE"):
    lines.append(f"- Note: {env['BENCH_LOGNOTE']}")
lines += [
    "",
    "Requests/s, p50 and p99 are medians over the rounds (the bare endpoint's over all of its runs); Requests and Errors are totals.",
    "",
    "| Backend | Endpoint | Requests/s | p50 | p99 | Requests | Errors |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    *rows,
    "",
    "Throughput of each endpoint as a ratio of the bare endpoint's, same server, same run: in each round, to the mean of "
    "the bare runs just before and after it; the median over the rounds, and in brackets the lowest and highest round. "
    "Webhook fan-out runs once per backend, after the rounds: its deliveries per second, to the mean of the bare runs "
    "just before and after the burst:",
    "",
    "| Backend | authenticated read | tokenization | payment create+confirm | payment with 50 rules | refund | webhook fan-out (deliveries) | Measured order |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    *ratios,
    "",
    "What screening with 50 rules costs: 1 − (payment with 50 rules ÷ payment create+confirm), per round; the median and "
    "the range (issue 20 asks for at most 10%). The rules merchant's payments name a customer IP and e-mail address and "
    "always the same card and IP, so the velocity query reads the most rows it ever reads (100 each for card and IP):",
    "",
    "| Backend | Cost of 50 rules |",
    "| --- | ---: |",
    *costs,
    "",
    f"Payments at half of the measured payment throughput (its median), sent at a fixed rate for {env['BENCH_HALF_SECS']} s by `examples/loadgen.rs` "
    "(open loop; each latency counted from when its request was due; 64 keep-alive connections opened before the run, "
    "as wrk2 opens its own, and at most 64 requests in flight; a request that finds them all busy waits, its wait counted):",
    "",
    "| Backend | Requests/s | p50 | p99 | Requests | Errors |",
    "| --- | ---: | ---: | ---: | ---: | ---: |",
    *halves,
    "",
    "",
    f"Webhook fan-out: {env['BENCH_FANOUT']} endpoints subscribed to `payment.succeeded` on a local receiver "
    "(`examples/webhook_sink.rs`, plain HTTP on 127.0.0.1 as dev mode allows, verifying every `Paywarden-Signature` "
    f"with the crate's exported verifier); payments sent at {env['BENCH_FANOUT_RATE']} req/s for "
    f"{env['BENCH_FANOUT_SECONDS']} s; deliveries per second from the first arrival to the last:",
    "",
    "| Backend | Endpoints | Payments | Delivered | Deliveries/s | First to last | Bad signatures |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    *fans,
    "",
    "Errors counts non-2xx responses plus socket errors reported by wrk; a run with errors is not a valid measurement.",
]
if bad:
    lines += ["", "**Warning:** " + "; ".join(bad) + "."]
text = "\n".join(lines) + "\n"
with open(sys.argv[1], "w", encoding="utf-8") as f:
    f.write(text)
print(text)
sys.exit(1 if bad else 0)
PY
log "wrote $out_md"
