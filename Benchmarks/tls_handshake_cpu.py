#!/usr/bin/env python3
"""Full TLS 1.3 handshake cost: Quiver's server next to `openssl s_server`, in one run.

The same client (`openssl s_time -new -tls1_3`, one connection at a time, X25519, P-256
certificate) drives each server for the same wall time; the server's CPU time (user+sys,
from /proc) is divided by the handshakes it completed. Absolute numbers are noisy on a
shared 2-core machine; the ratio is the result.

Usage: python3 Benchmarks/tls_handshake_cpu.py [--seconds 10] [--runs 3]
"""
import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TICKS = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port, timeout=10.0):
    deadline = time.monotonic() + timeout
    delay = 0.01
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(delay)
            delay = min(delay * 2, 0.2)
    raise RuntimeError(f"server on port {port} did not start")


def cpu_seconds(pid):
    """user+sys CPU seconds of a process and its (reaped or live) threads."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def measure(command, port, seconds):
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        wait_ready(port)
        before = cpu_seconds(server.pid)
        out = subprocess.run(
            ["openssl", "s_time", "-connect", f"127.0.0.1:{port}", "-new", "-tls1_3", "-time", str(seconds)],
            capture_output=True, text=True, timeout=seconds + 30).stdout
        after = cpu_seconds(server.pid)
        match = re.search(r"(\d+) connections in ([\d.]+) real seconds", out)
        if not match:
            raise RuntimeError(f"unexpected s_time output:\n{out}")
        count = int(match.group(1))
        return {"handshakes": count, "per_second": count / float(match.group(2)),
                "cpu_ms": (after - before) * 1000 / max(count, 1)}
    finally:
        server.kill()
        server.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    subprocess.run(["swift", "build", "-c", "release", "--product", "quiver"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    binary = subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout.strip() + "/quiver"
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([binary, "cert", "--out", tmp, "--algorithm", "p256"], check=True, stderr=subprocess.DEVNULL)
        cert, key = f"{tmp}/cert.pem", f"{tmp}/key.pem"
        results = {"quiver": [], "openssl": []}
        for _ in range(args.runs):
            port = free_port()
            results["quiver"].append(measure(
                [binary, "serve", "--host", "127.0.0.1", "--port", str(port), "--cert", cert, "--key", key,
                 "--log-level", "error"], port, args.seconds))
            port = free_port()
            results["openssl"].append(measure(
                ["openssl", "s_server", "-accept", str(port), "-cert", cert, "-key", key, "-tls1_3", "-quiet"],
                port, args.seconds))

    def med(name, field):
        return statistics.median(r[field] for r in results[name])

    version = subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout.strip()
    print(f"TLS 1.3 full handshakes (X25519, ECDSA P-256; each server picks its preferred suite),"
          f" client `openssl s_time -new`, {args.runs} runs × {args.seconds} s, medians; {version}; "
          f"{os.cpu_count()} cores\n")
    print("| server | handshakes/s | server CPU ms / handshake |")
    print("|---|---|---|")
    for name in ("quiver", "openssl"):
        print(f"| {name} | {med(name, 'per_second'):.0f} | {med(name, 'cpu_ms'):.3f} |")
    print(f"\nQuiver / OpenSSL CPU per handshake: {med('quiver', 'cpu_ms') / med('openssl', 'cpu_ms'):.2f}×")


if __name__ == "__main__":
    sys.exit(main())
