#!/usr/bin/env bash
# Schema fuzzing: checks the live server against its own OpenAPI document.
#
# Starts `paywarden serve --dev` in a temporary data directory on a free
# loopback port and runs Schemathesis against https://127.0.0.1:PORT/openapi.json
# with every check that can apply to this API (see CHECKS below): no 5xx, every
# status code / content type / body / header as documented, schema-valid
# requests accepted, schema-invalid ones rejected, auth enforced, 405 + Allow
# for undocumented methods, and no merchant reading another merchant's objects;
# then the audit chain must verify and the server must have logged no error.
# TLS is verified against the dev certificate. Exits non-zero on any failure
# (and on the warnings listed in FAIL_ON_WARNINGS); always stops the server.
#
# Usage: scripts/schema-fuzz.sh [extra schemathesis run options...]
# Environment:
#   SCHEMA_FUZZ_MAX_EXAMPLES  test cases per operation and phase (default 100)
#   SCHEMA_FUZZ_SEED          reproduce a run (its seed is printed at the end)
#   SCHEMA_FUZZ_OUT           reports and server log (default <target>/schema-fuzz)
#   SCHEMA_FUZZ_VENV          Schemathesis's virtualenv (default <target>/schemathesis-venv)
#   SCHEMA_FUZZ_KEEP=1        keep the temp dir (data dir, Schemathesis config, hooks)
#   PAYWARDEN_BIN             server binary; when unset, `cargo build` makes
#                             <target>/debug/paywarden (<target>: $CARGO_TARGET_DIR or ./target)
#
# Bounded by --max-examples (every phase, the stateful one included): about a
# minute on 2 cores. Each failure prints a `Reproduce with:` curl line; the
# JUnit/NDJSON reports and the server's JSON log are in SCHEMA_FUZZ_OUT.
set -euo pipefail

SCHEMATHESIS_VERSION="4.32.5"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
MAX_EXAMPLES="${SCHEMA_FUZZ_MAX_EXAMPLES:-100}"
OUT="${SCHEMA_FUZZ_OUT:-$TARGET/schema-fuzz}"
VENV="${SCHEMA_FUZZ_VENV:-$TARGET/schemathesis-venv}"
RUN_ID="$(date -u +%Y%m%dT%H%M%SZ)-$$"

log() { printf 'schema-fuzz: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 2; }

# --- Schemathesis, pinned, in its own virtualenv --------------------------------
ST="$VENV/bin/schemathesis"
if [[ "$("$ST" --version 2>/dev/null || true)" != *"version $SCHEMATHESIS_VERSION" ]]; then
    log "installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION" >&2 \
        || die "pip install schemathesis==$SCHEMATHESIS_VERSION failed"
fi
"$ST" --version >&2

# --- The server ------------------------------------------------------------------
if [[ -n "${PAYWARDEN_BIN:-}" ]]; then
    BIN="$PAYWARDEN_BIN"
else
    (cd "$ROOT" && cargo build --quiet --bin paywarden) || die "cargo build failed"
    BIN="$TARGET/debug/paywarden"
fi
[[ -x "$BIN" ]] || die "no server binary at $BIN"

mkdir -p "$OUT"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/paywarden-schema-fuzz.XXXXXX")"
# Test a private copy: another build into the same target dir must not swap
# the binary between here and the server's start or the CLI calls below.
cp "$BIN" "$WORK/paywarden" || { rm -rf "$WORK"; die "cannot copy $BIN"; }
BIN="$WORK/paywarden"
SERVER_PID=""
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
    local status=$?
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [[ "${SCHEMA_FUZZ_KEEP:-0}" == 1 ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Nothing from the caller's environment or working directory may configure the
# server (a PAYWARDEN_DATABASE_URL or a ./paywarden.toml would point it at
# another database, where the dev bootstrap prints no keys).
while IFS= read -r name; do unset "$name"; done < <(compgen -e | grep '^PAYWARDEN_' || true)
cd "$WORK"

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

DATA="$WORK/data"
CERT="$DATA/dev-tls/cert.pem"
PORT="$(free_port)"
BASE="https://127.0.0.1:$PORT"
# Lockout off: the fuzzer sends hundreds of deliberately bad keys (ignored_auth,
# negative Authorization headers); after the default 10 the client address would
# be locked out and every later request answered 429.
# Unauthenticated pages (3-D Secure page, card fields, /openapi.json) are
# rate limited per client address; the fuzzer sends thousands from one.
# Stripe connections the fuzzer creates (POST /v1/connectors, maybe as the
# default) reach a closed local port, never the real Stripe: their payments
# fail at once with processor_unavailable.
PAYWARDEN_LOCKOUT__THRESHOLD=1000000 PAYWARDEN_LOG_FORMAT=json \
PAYWARDEN_RATE_LIMITS__UNAUTHENTICATED__PER_CLIENT_IP__BURST=4000000000 \
PAYWARDEN_RATE_LIMITS__UNAUTHENTICATED__PER_CLIENT_IP__PER_MINUTE=4000000000 \
PAYWARDEN_CONNECTORS__STRIPE__BASE_URL=https://127.0.0.1:9 \
    "$BIN" serve --dev --data-dir "$DATA" --listen "127.0.0.1:$PORT" >"$WORK/server.out" 2>"$OUT/server.log" </dev/null &
SERVER_PID=$!

# A tiny HTTPS client that verifies the dev certificate: api PATH [KEY].
api() {
    python3 - "$BASE$1" "${2:-}" "$CERT" <<'PY'
import ssl, sys, urllib.request
url, key, cafile = sys.argv[1:4]
request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"} if key else {})
with urllib.request.urlopen(request, context=ssl.create_default_context(cafile=cafile), timeout=5) as r:
    sys.stdout.write(r.read().decode())
PY
}
json_field() { python3 -c 'import json, sys; v = json.load(sys.stdin)
for k in sys.argv[1].split("."): v = v[k]
print(v)' "$1"; }

for _ in $(seq 150); do
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$OUT/server.log" >&2; die "the server exited during startup"; }
    [[ -f "$CERT" ]] && api /healthz >/dev/null 2>&1 && break
    sleep 0.2
done
api /healthz >/dev/null || die "the server did not answer /healthz within 30 s"
SECRET_KEY="$(sed -n 's/^ *Test secret key: *//p' "$WORK/server.out")"
[[ "$SECRET_KEY" == sk_test_* ]] || die "no demo secret key in the server's output"
log "server pid $SERVER_PID at $BASE (log: $OUT/server.log)"

# A second merchant with its own secret key, so that object_level_authorization
# can replay each merchant's reads as the other (the operator CLI writes to the
# same SQLite database as the running server).
cli() { "$BIN" --data-dir "$DATA" --dev --json "$@"; }
PEER_MERCHANT="$(cli merchant create --name "Schema fuzz peer" | json_field id)"
PEER_JSON="$(cli key create --merchant "$PEER_MERCHANT" --kind secret --description "schema-fuzz peer")"
PEER_KEY="$(json_field secret <<<"$PEER_JSON")"
PEER_KEY_ID="$(json_field id <<<"$PEER_JSON")"
OWN_KEY_ID="$(api /v1/merchant "$SECRET_KEY" | json_field key.id)"

# Revoking the key a request is authenticated with is legitimate (and answered
# 200), but then every later request of the run is a 401, which would read as
# failures. The stateful phase does find those ids (list -> revoke), so a hook
# points any revoke of a fuzzing identity's own key at a sacrificial one instead:
# a third key of the demo merchant, which the run may revoke (200, then 409).
DEMO_MERCHANT="$(api /v1/merchant "$SECRET_KEY" | json_field id)"
SACRIFICE_KEY_ID="$(cli key create --merchant "$DEMO_MERCHANT" \
    --kind secret --description "schema-fuzz: may be revoked" | json_field id)"
# Card reveal is granted to no key by default, not even to secret keys (which
# only ever get 403 there): its run uses a restricted key holding
# `tokens:reveal`, so the operation is exercised for real (200, then 429 past
# the limit of 10 a minute; 404 for unknown tokens; 400 with Idempotency-Key).
REVEAL_JSON="$(cli key create --merchant "$DEMO_MERCHANT" --kind restricted --permission tokens:reveal \
    --description "schema-fuzz: reveal")"
REVEAL_KEY="$(json_field secret <<<"$REVEAL_JSON")"
REVEAL_KEY_ID="$(json_field id <<<"$REVEAL_JSON")"
#
# Idempotency-Key: the generator repeats short keys ("0", "!") across different
# requests, and a key reused for another request is rightly refused (422
# idempotency_key_reused) even though each request alone is schema-valid. So a
# well-formed key is made specific to its request (suffixed with a digest of
# what the server's request MAC covers: the API key, as a hash, and method,
# path, query and body as sent, key order included; two identities fuzz the
# API, and the same body sent with the other merchant's key is another
# request): identical requests still
# share a key, and get the stored answer replayed; malformed keys (negative
# cases) are sent as generated.
cat >"$WORK/paywarden_fuzz_hooks.py" <<'PY'
import hashlib
import json
import os
import re

import schemathesis

PROTECTED = frozenset(os.environ["SCHEMA_FUZZ_PROTECTED_KEY_IDS"].split(","))
SACRIFICE = os.environ["SCHEMA_FUZZ_SACRIFICE_KEY_ID"]
WELL_FORMED_KEY = re.compile(r"[!-~](?:[ -~]{0,253}[!-~])?")


def header(headers, name):
    """A header's value from a case's or a request's headers, whatever its case."""
    for key, value in (headers or {}).items():
        if isinstance(key, str) and key.lower() == name.lower():
            return value
    return None


@schemathesis.hook
def before_call(context, case, kwargs):
    if case.operation.path == "/v1/api_keys/{id}/revoke" and case.path_parameters:
        if case.path_parameters.get("id") in PROTECTED:
            case.path_parameters["id"] = SACRIFICE
    key = (case.headers or {}).get("Idempotency-Key")
    if isinstance(key, str) and WELL_FORMED_KEY.fullmatch(key):
        authorization = header(case.headers, "Authorization") or header(kwargs.get("headers"), "Authorization")
        identity = hashlib.sha256(str(authorization).encode()).hexdigest()
        # Not sorted: the MAC covers the body's bytes, and `{"a": 1, "b": 2}`
        # is another request than `{"b": 2, "a": 1}` (and `1` than `1.0`).
        request = json.dumps([identity, case.method, case.formatted_path, case.query, case.body], default=repr)
        digest = hashlib.sha256(request.encode()).hexdigest()[:16]
        case.headers["Idempotency-Key"] = f"{key[:200]}.{digest}"
PY

# Real objects of the demo merchant, so that operations on one object reach
# past the lookup: with only generated ids every such request is a 404 (and an
# operation whose cases happen to be mostly negative-auth ones would look as if
# it only ever answered 401). Each id parameter (and a refund's `payment`) draws
# from these ids half of the time. Whatever the object's state, a schema-valid
# request must then get an acceptable answer: a step its status does not allow,
# or an amount above what it holds, is a 409, never a 400.
seed_objects() {
python3 - "$BASE" "$SECRET_KEY" "$CERT" "$OWN_KEY_ID" "$SACRIFICE_KEY_ID" >"$WORK/dictionaries.toml" <<'PY'
import json, ssl, sys, urllib.request
base, key, cafile, own_key, sacrifice = sys.argv[1:6]
context = ssl.create_default_context(cafile=cafile)

def post(path, body):
    request = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, context=context, timeout=10) as r:
        return json.load(r)

def get(path):
    request = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, context=context, timeout=10) as r:
        return json.load(r)

# An earlier run may have left the merchant routed to a Stripe connection it
# created (on a closed port) or screened by rules that block or hold: the
# seeded payments must succeed, so both are undone first.
for connection in get("/v1/connectors?limit=100")["data"]:
    if connection["status"] == "active":
        post(f"/v1/connectors/{connection['id']}/disable", {})
post("/v1/fraud/rules", {"rules": ""})

card = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2040, "cvc": "123"}
tokens = [post("/v1/tokens", {"card": card})["id"] for _ in range(6)]
# Deleting operations draw from objects of their own, so that within a run
# the reads keep finding theirs.
deletable_tokens = [post("/v1/tokens", {"card": card})["id"] for _ in range(3)]
# Tokens for the reveal run alone.
revealable = [post("/v1/tokens", {"card": card})["id"] for _ in range(3)]
payments = [
    post("/v1/payments", {"amount": 1500, "currency": "usd"})["id"],
    post("/v1/payments", {"amount": 2500, "currency": "usd", "payment_method": tokens[0]})["id"],
    post("/v1/payments", {"amount": 3500, "currency": "usd", "payment_method": tokens[1],
                          "confirm": True, "capture_method": "manual"})["id"],
]
paid = post("/v1/payments", {"amount": 4500, "currency": "eur", "payment_method": tokens[2], "confirm": True})["id"]
payments.append(paid)
refunds = [post("/v1/refunds", {"payment": paid, "amount": 100})["id"]]
endpoints = [post("/v1/webhook_endpoints", {"url": f"http://localhost:9/hook{i}", "events": ["*"]})["id"]
             for i in range(3)]
deletable_endpoints = [post("/v1/webhook_endpoints", {"url": f"http://localhost:9/gone{i}", "events": ["*"]})["id"]
                       for i in range(2)]
request = urllib.request.Request(base + "/v1/events?limit=5", headers={"Authorization": f"Bearer {key}"})
with urllib.request.urlopen(request, context=context, timeout=10) as r:
    events = [e["id"] for e in json.load(r)["data"]]
ids = {"token_ids": tokens, "deletable_token_ids": deletable_tokens, "revealable_token_ids": revealable,
       "payment_ids": payments, "refund_ids": refunds, "endpoint_ids": endpoints,
       "deletable_endpoint_ids": deletable_endpoints, "event_ids": events, "api_key_ids": [own_key, sacrifice]}
for name, values in ids.items():
    print(f"[dictionaries.{name}]\nvalues = {json.dumps(values)}\n")
bindings = {
    "token_ids": ["get_token"],
    "deletable_token_ids": ["delete_token"],
    "revealable_token_ids": ["reveal_token"],
    "payment_ids": ["get_payment", "confirm_payment", "cancel_payment", "capture_payment"],
    "refund_ids": ["get_refund"],
    "event_ids": ["get_event"],
    "endpoint_ids": ["get_webhook_endpoint", "list_webhook_attempts", "rotate_webhook_endpoint_secret",
                     "update_webhook_endpoint"],
    "deletable_endpoint_ids": ["delete_webhook_endpoint"],
    "api_key_ids": ["get_api_key", "revoke_api_key"],
}
for name, operations in bindings.items():
    for operation in operations:
        print(f'[[operations]]\ninclude-operation-id = "{operation}"\n'
              f'parameters = {{ "path.id" = {{ dictionary = "{name}", probability = 0.5 }} }}\n')
print('[[operations]]\ninclude-operation-id = "create_refund"\n'
      'parameters = { "body.payment" = { dictionary = "payment_ids", probability = 0.5 } }\n')
PY
log "seeded $(grep -c '^\[dictionaries' "$WORK/dictionaries.toml") id dictionaries for the run"
}

# Both merchants' secret keys (secret keys hold every permission, so no 403
# stands in for a real answer). The demo merchant's is used unless an operation
# refuses it; `peers` makes object_level_authorization replay each one's reads
# of its own objects as the other, which must not get them.
python3 - "$WORK/auth.json" "$SECRET_KEY" "$PEER_KEY" "$WORK/auth-reveal.json" "$REVEAL_KEY" <<'PY'
import json, sys
path, a, b, reveal_path, reveal = sys.argv[1:6]
entry = lambda name, key: {"name": name, "fixedHeaders": [{"name": "Authorization", "value": f"Bearer {key}"}]}
json.dump({"auth": [entry("demo_merchant", a), entry("peer_merchant", b)]}, open(path, "w"))
json.dump({"auth": [entry("demo_revealer", reveal)]}, open(reveal_path, "w"))
PY

# Warnings that mean the run did not test what it should: an operation that
# only ever answered 401/403 (a fuzzing key got revoked), a `pattern`
# Schemathesis cannot generate from, a dangling $ref, a body it cannot parse.
# Not `rate_limited`: a per-key limit answering 429 is correct behaviour (the
# address lockout, disabled above, is checked after the run instead).
FAIL_ON_WARNINGS='"missing_auth", "unsupported_regex", "unresolvable_reference", "missing_deserializer"'
write_config() {
cat >"$WORK/schemathesis.toml" <<TOML
[warnings]
fail-on = [$FAIL_ON_WARNINGS]

# A body over the size limit is refused with 413 before its fields are read:
# for a schema-violating body (a string longer than its maxLength near the
# limit) that is a rejection like 400. The rest is Schemathesis' default list.
[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx"]

[auth.wfc]
path = "$WORK/auth.json"
peers = ["demo_merchant", "peer_merchant"]
TOML
cat "$WORK/dictionaries.toml" >>"$WORK/schemathesis.toml"
# The reveal run: the same settings with the one identity that may reveal.
sed -e "s|$WORK/auth.json|$WORK/auth-reveal.json|" -e '/^peers = /d' "$WORK/schemathesis.toml" >"$WORK/schemathesis-reveal.toml"
}
# Each run starts from objects of its own: a run's stateful phase follows
# links from reading an object to deleting it, so the objects seeded for one
# run are gone by the next, whose reads would then only ever answer 404 (and
# 401 to the unauthenticated checks, which Schemathesis reports as an
# operation that never authenticates).
fresh_objects() { seed_objects; write_config; }
fresh_objects

# Every built-in check ("all"), none excluded. use_after_free and
# ensure_resource_availability only act after a DELETE or a POST that creates a
# resource (there are none yet: revoke returns an existing key) and cost
# nothing until then. max_response_time only acts with a --max-response-time
# limit, left unset: timing on a shared 2-core machine is noise.
CHECKS="all"

SEED_ARGS=()
[[ -n "${SCHEMA_FUZZ_SEED:-}" ]] && SEED_ARGS=(--seed "$SCHEMA_FUZZ_SEED")

# st_run NAME [args...]: one schemathesis run against the live server.
st_run() {
    local name=$1; shift
    PYTHONPATH="$WORK" SCHEMATHESIS_HOOKS=paywarden_fuzz_hooks \
    SCHEMA_FUZZ_PROTECTED_KEY_IDS="$OWN_KEY_ID,$PEER_KEY_ID,$REVEAL_KEY_ID" \
    SCHEMA_FUZZ_SACRIFICE_KEY_ID="$SACRIFICE_KEY_ID" \
    "$ST" --config-file "${ST_CONFIG:-$WORK/schemathesis.toml}" run "$BASE/openapi.json" \
    --tls-verify "$CERT" \
    --header "User-Agent: paywarden-schema-fuzz/$RUN_ID (schemathesis $SCHEMATHESIS_VERSION)" \
    --max-examples "$MAX_EXAMPLES" \
    --workers 1 \
    --request-timeout 10 \
    --generation-database none \
    --report junit,ndjson --report-junit-path "$OUT/junit-$name.xml" --report-ndjson-path "$OUT/events-$name.ndjson" \
    --no-color \
    "${SEED_ARGS[@]}" "$@"
}

log "running schemathesis (run id $RUN_ID, $MAX_EXAMPLES examples per operation)"
status=0
# Every operation but card tokenization, with every check.
st_run api --checks "$CHECKS" --exclude-operation-id create_token --exclude-operation-id create_webhook_endpoint \
    --exclude-operation-id update_webhook_endpoint --exclude-operation-id reveal_token \
    --exclude-operation-id create_connector --exclude-operation-id save_fraud_rules \
    --exclude-operation-id dry_run_fraud_rules --exclude-operation-id replace_fraud_list \
    --exclude-operation-id update_connector "$@" || status=$?
log "running schemathesis on POST /v1/tokens/{id}/reveal (with a key that may reveal)"
# One operation: no links to follow, so no stateful phase.
ST_CONFIG="$WORK/schemathesis-reveal.toml" st_run reveal --checks "$CHECKS" --include-operation-id reveal_token \
    --phases examples,coverage,fuzzing "$@" || status=$?
# Card tokenization, with every check but positive_data_acceptance: a card is
# valid only if it passes Luhn, matches its brand's CVC length and has not
# expired, none of which JSON Schema can express, so a schema-valid card may
# rightly be refused with 400. Negative data and conformance are still checked.
log "running schemathesis on POST /v1/tokens"
fresh_objects
# The token operations its links lead to run along, so the stateful phase can
# follow a new token to reading and deleting it.
st_run tokens --checks "$CHECKS" --exclude-checks positive_data_acceptance --include-operation-id create_token \
    --include-operation-id get_token --include-operation-id delete_token "$@" || status=$?
# Webhook endpoints, likewise: whether a URL is acceptable depends on its
# scheme, credentials and (live mode) the addresses its host resolves to, which
# a JSON schema cannot say; every other check applies.
log "running schemathesis on POST /v1/webhook_endpoints[/{id}]"
fresh_objects
st_run webhooks --checks "$CHECKS" --exclude-checks positive_data_acceptance \
    --include-operation-id create_webhook_endpoint --include-operation-id update_webhook_endpoint "$@" || status=$?

# Processor connections and fraud rules, likewise: a Stripe key must be of the
# calling key's mode, rules are text in the rules language, list values are at
# most 256 bytes (not characters), a connection's fallback must be another
# active connection of the same merchant and mode (else 409); none of it is
# JSON Schema's to say. Their
# links lead to operations of the main run, so no stateful phase here.
log "running schemathesis on POST /v1/connectors[/{id}], /v1/fraud/rules[/dry_run], /v1/fraud/lists/{name}"
fresh_objects
st_run rules --checks "$CHECKS" --exclude-checks positive_data_acceptance \
    --include-operation-id create_connector --include-operation-id update_connector \
    --include-operation-id save_fraud_rules --include-operation-id dry_run_fraud_rules --include-operation-id replace_fraud_list \
    --phases examples,coverage,fuzzing "$@" || status=$?

if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    log "the server died during the run; its log:"
    tail -n 50 "$OUT/server.log" >&2
    status=1
fi
# The fuzzing keys must still work: not revoked, their address not locked out.
for key in "$SECRET_KEY" "$PEER_KEY"; do
    api /v1/merchant "$key" >/dev/null 2>&1 || { log "a fuzzing key no longer authenticates after the run"; status=1; }
done
# Every request was audited; the hash chain must still verify after them.
if ! cli audit verify >"$WORK/audit-verify.json"; then
    log "the audit chain does not verify after the run: $(cat "$WORK/audit-verify.json")"
    status=1
fi
# A 5xx is already a failure above; this also catches errors that did not
# reach a response (e.g. a failed audit write).
if grep -q '"level":"ERROR"' "$OUT/server.log"; then
    log "the server logged errors (see $OUT/server.log):"
    grep '"level":"ERROR"' "$OUT/server.log" | tail -n 20 >&2
    status=1
fi
if [[ "$status" -eq 0 ]]; then log "passed"; else log "FAILED (exit $status)"; fi
exit "$status"
