#!/usr/bin/env python3
"""Checks paywarden's TLS listener against our policy.

Reads an sslyze JSON report (sslyze >= 6) and probes the server with
`openssl s_client`, then prints a PASS/FAIL table. Exit status: 0 when every
check passes, 1 when any fails, 2 on usage/input errors.

Policy:
  * SSL 2.0, SSL 3.0, TLS 1.0, TLS 1.1: no accepted cipher suite.
  * TLS 1.2 and TLS 1.3: supported.
  * every accepted TLS 1.2 suite is ECDHE key exchange + AEAD (AES-GCM or
    ChaCha20-Poly1305); every TLS 1.3 suite is one of the three standard AEADs.
  * ephemeral ECDH keys of TLS 1.2 suites are at least 253 bits (X25519/P-256).
  * no client-initiated renegotiation, no insecure renegotiation
    (secure renegotiation, RFC 5746, is fine; so is none at all).
  * no TLS compression (CRIME); no TLS 1.3 early data (0-RTT, replayable).
  * not vulnerable to Heartbleed, OpenSSL CCS injection or ROBOT.
  * `openssl s_client -tls1_1 -cipher DEFAULT@SECLEVEL=0` is refused, and
    `-tls1_2` / `-tls1_3` connect and verify against the dev certificate.

Used by scripts/tls-scan.sh; it can also be run by hand:
  scripts/tls_policy.py --sslyze-json scan.json --host 127.0.0.1 --port 8443 --cafile DATA/dev-tls/cert.pem
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys

LEGACY = [
    ("ssl_2_0_cipher_suites", "SSL 2.0"),
    ("ssl_3_0_cipher_suites", "SSL 3.0"),
    ("tls_1_0_cipher_suites", "TLS 1.0"),
    ("tls_1_1_cipher_suites", "TLS 1.1"),
]
TLS12_OK = re.compile(r"^TLS_ECDHE_(ECDSA|RSA)_WITH_(AES_(128|256)_GCM_SHA(256|384)|CHACHA20_POLY1305_SHA256)$")
TLS13_OK = {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}
MIN_ECDH_BITS = 253  # X25519 reports 253; P-256 reports 256


class Report:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str]] = []

    def add(self, ok: bool | None, check: str, detail: str) -> None:
        """ok=None records an informational row that never fails the run."""
        self.rows.append(("INFO" if ok is None else ("PASS" if ok else "FAIL"), check, detail))

    @property
    def failed(self) -> int:
        return sum(1 for s, _, _ in self.rows if s == "FAIL")

    def print(self, title: str) -> None:
        w_check = max(len("Check"), *(len(c) for _, c, _ in self.rows))
        print()
        print(title)
        print(f"{'Result':<6}  {'Check':<{w_check}}  Detail")
        print(f"{'-' * 6}  {'-' * w_check}  {'-' * 40}")
        for status, check, detail in self.rows:
            print(f"{status:<6}  {check:<{w_check}}  {detail}")
        print()


def scan_result(results: dict, name: str):
    """Returns (result, error) for one sslyze scan command."""
    attempt = results.get(name)
    if attempt is None:
        return None, "not in report"
    if attempt.get("status") != "COMPLETED":
        reason = attempt.get("error_reason") or attempt.get("status")
        trace = (attempt.get("error_trace") or "").strip().splitlines()
        return None, f"scan {reason}" + (f": {trace[-1]}" if trace else "")
    return attempt.get("result") or {}, None


def accepted(result: dict) -> list[dict]:
    return result.get("accepted_cipher_suites") or []


def check_sslyze(report: Report, doc: dict) -> None:
    servers = doc.get("server_scan_results") or []
    if len(servers) != 1:
        report.add(False, "sslyze report", f"expected 1 server result, found {len(servers)}")
        return
    server = servers[0]
    if server.get("connectivity_status") != "COMPLETED" or server.get("scan_status") != "COMPLETED":
        trace = (server.get("connectivity_error_trace") or "").strip().splitlines()
        report.add(False, "sslyze connectivity", f"{server.get('connectivity_status')} {trace[-1] if trace else ''}".strip())
        return
    results = server.get("scan_result") or {}

    for key, label in LEGACY:
        res, err = scan_result(results, key)
        if err:
            report.add(False, f"{label} disabled", err)
            continue
        names = [s["cipher_suite"]["name"] for s in accepted(res)]
        report.add(not names, f"{label} disabled", "no suite accepted" if not names else "ACCEPTED: " + ", ".join(names))

    # TLS 1.2
    res, err = scan_result(results, "tls_1_2_cipher_suites")
    if err:
        report.add(False, "TLS 1.2 enabled", err)
    else:
        suites = accepted(res)
        names = [s["cipher_suite"]["name"] for s in suites]
        report.add(bool(names), "TLS 1.2 enabled", f"{len(names)} suite(s) accepted")
        bad = [n for n in names if not TLS12_OK.match(n)]
        report.add(bool(names) and not bad, "TLS 1.2 suites ECDHE+AEAD",
                   ("NOT ALLOWED: " + ", ".join(bad)) if bad else ", ".join(names) or "none")
        weak = []
        for s in suites:
            key = s.get("ephemeral_key") or {}
            if key.get("type_name") != "ECDH" or (key.get("size") or 0) < MIN_ECDH_BITS:
                weak.append(f"{s['cipher_suite']['name']}: {key.get('type_name')} {key.get('size')} bits")
        curves = sorted({(s.get("ephemeral_key") or {}).get("curve_name") or "?" for s in suites})
        report.add(bool(suites) and not weak, "TLS 1.2 ephemeral ECDH >= 253 bits",
                   ("WEAK: " + "; ".join(weak)) if weak else ("negotiated " + ", ".join(curves) if suites else "none"))

    # TLS 1.3
    res, err = scan_result(results, "tls_1_3_cipher_suites")
    if err:
        report.add(False, "TLS 1.3 enabled", err)
    else:
        names = [s["cipher_suite"]["name"] for s in accepted(res)]
        report.add(bool(names), "TLS 1.3 enabled", f"{len(names)} suite(s) accepted")
        bad = [n for n in names if n not in TLS13_OK]
        report.add(bool(names) and not bad, "TLS 1.3 suites standard AEAD",
                   ("NOT ALLOWED: " + ", ".join(bad)) if bad else ", ".join(names) or "none")

    # Renegotiation
    res, err = scan_result(results, "session_renegotiation")
    if err:
        report.add(False, "No insecure/client renegotiation", err)
    else:
        dos = res.get("is_vulnerable_to_client_renegotiation_dos")
        count = res.get("client_renegotiations_success_count") or 0
        secure = res.get("supports_secure_renegotiation")
        ok = dos is False and count == 0
        report.add(ok, "No insecure/client renegotiation",
                   f"client renegotiations accepted: {count}; secure renegotiation (RFC 5746) "
                   f"{'advertised' if secure else 'not supported'}")

    # Compression
    res, err = scan_result(results, "tls_compression")
    if err:
        report.add(False, "No TLS compression", err)
    else:
        comp = res.get("supports_compression")
        report.add(comp is False, "No TLS compression", "compression supported!" if comp else "not supported")

    # TLS 1.3 0-RTT data can be replayed: a payment API must not accept it.
    res, err = scan_result(results, "tls_1_3_early_data")
    if err:
        report.add(False, "No TLS 1.3 early data (0-RTT)", err)
    else:
        early = res.get("supports_early_data")
        report.add(early is False, "No TLS 1.3 early data (0-RTT)", "accepted!" if early else "not accepted")

    # Well-known implementation bugs: cheap to check, never expected with rustls.
    for key, label, field, good in [
        ("heartbleed", "Not vulnerable to Heartbleed", "is_vulnerable_to_heartbleed", lambda v: v is False),
        ("openssl_ccs_injection", "Not vulnerable to CCS injection", "is_vulnerable_to_ccs_injection", lambda v: v is False),
        ("robot", "Not vulnerable to ROBOT", "robot_result", lambda v: isinstance(v, str) and v.startswith("NOT_VULNERABLE")),
    ]:
        res, err = scan_result(results, key)
        if err:
            report.add(False, label, err)
        else:
            report.add(good(res.get(field)), label, f"{field} = {res.get(field)}")

    # Informational: never fails the run.
    res, err = scan_result(results, "elliptic_curves")
    if not err:
        report.add(None, "Key-exchange groups", ", ".join(c["name"] for c in res.get("supported_curves") or []) or "none")
    res, err = scan_result(results, "tls_fallback_scsv")
    if not err:
        report.add(None, "TLS_FALLBACK_SCSV", "supported" if res.get("supports_fallback_scsv") else "not supported")
    res, err = scan_result(results, "tls_extended_master_secret")
    if not err:
        report.add(None, "Extended master secret (TLS 1.2)",
                   "supported" if res.get("supports_ems_extension") else "NOT supported")


def s_client(host: str, port: int, args: list[str], cafile: str | None) -> tuple[bool, str, str]:
    """Runs openssl s_client; returns (handshake completed, protocol, cipher)."""
    cmd = ["openssl", "s_client", "-connect", f"{host}:{port}", "-servername", "localhost"] + args
    if cafile:
        cmd += ["-CAfile", cafile, "-verify_return_error", "-verify_ip", host]
    try:
        out = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return False, "", "timeout"
    text = out.stdout + out.stderr
    m = re.search(r"^New, (\S+), Cipher is (\S+)", text, re.M)
    if out.returncode == 0 and m and m.group(2) != "(NONE)":
        # "New, X, Cipher is" names the suite's version; the session's protocol is below.
        p = re.search(r"^\s*Protocol\s*:\s*(\S+)", text, re.M)
        return True, p.group(1) if p else m.group(1).rstrip(","), m.group(2)
    alert = re.search(r"alert (?:number \d+|[a-z ]+)", text)
    err = re.search(r"error:[0-9A-F]+:[^:]*:[^:]*:([^:]+)", text)
    why = (alert.group(0) if alert else "") or (err.group(1) if err else "") or f"exit {out.returncode}"
    return False, "", why


def check_openssl(report: Report, host: str, port: int, cafile: str | None) -> None:
    try:
        version = subprocess.run(["openssl", "version"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        report.add(False, "openssl s_client available", str(e))
        return
    report.add(None, "openssl client", version)

    # Legacy protocols and non-policy suites must be refused, even when the
    # client allows everything (SECLEVEL=0).
    refused = [
        ("-tls1_1 DEFAULT@SECLEVEL=0 refused", ["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"]),
        ("-tls1 DEFAULT@SECLEVEL=0 refused", ["-tls1", "-cipher", "DEFAULT@SECLEVEL=0"]),
        ("-tls1_2 CBC suites refused", ["-tls1_2", "-cipher", "ECDHE+SHA1:ECDHE+SHA256:ECDHE+SHA384:!AESGCM:!CHACHA20@SECLEVEL=0"]),
        ("-tls1_2 static-RSA suites refused", ["-tls1_2", "-cipher", "kRSA@SECLEVEL=0"]),
    ]
    for label, args in refused:
        ok, proto, cipher = s_client(host, port, args, None)
        report.add(not ok, label, f"CONNECTED {proto} {cipher}" if ok else f"refused ({cipher})")

    for label, args in [("-tls1_2 connects (cert verified)", ["-tls1_2"]), ("-tls1_3 connects (cert verified)", ["-tls1_3"])]:
        ok, proto, cipher = s_client(host, port, args, cafile)
        report.add(ok, label, f"{proto} {cipher}" if ok else f"failed ({cipher})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sslyze-json", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cafile", help="CA/cert file to verify the server certificate with")
    ap.add_argument("--skip-openssl", action="store_true")
    a = ap.parse_args()

    report = Report()
    try:
        with open(a.sslyze_json, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        report.add(False, "sslyze report readable", str(e))
        doc = None
    if doc is not None:
        check_sslyze(report, doc)
    if not a.skip_openssl:
        check_openssl(report, a.host, a.port, a.cafile)

    report.print(f"TLS policy scan of https://{a.host}:{a.port}")
    passed = sum(1 for s, _, _ in report.rows if s == "PASS")
    print("tls-scan: FAIL" if report.failed else "tls-scan: PASS")
    print(f"tls-scan: {passed} passed, {report.failed} failed")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
