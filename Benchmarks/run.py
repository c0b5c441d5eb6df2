#!/usr/bin/env python3
"""Quiver's benchmarks side by side with ngtcp2, aioquic and OpenSSL, in one run.

Every figure is measured against a peer in the same run on the same machine, and the result
is the ratio: absolute numbers on a shared 2-core machine are noisy. Prints a markdown table,
writes a bar chart of the ratios (SVG) and, with --write-docs, docs/PERFORMANCE.md.

  QUIC bulk      a download of --bulk-mb from a file in /dev/shm: gtlsclient → Quiver
                 (`quiver serve --http3`) vs gtlsclient → gtlsserver (same client, so the
                 servers are compared); `quiver get` vs gtlsclient from one gtlsserver (the
                 clients compared); also Quiver → Quiver and aioquic → Quiver for reference.
  TLS bulk       the same file over TLS 1.3/TCP, then TLS 1.2: `openssl s_client` → Quiver
                 (`quiver-bench tls-www`) vs → `openssl s_server -WWW`.
  Handshakes     one load-generator process (`quiver-bench handshake-load`, Quiver's sans-I/O
                 client) keeps --concurrency QUIC handshakes in flight for --seconds against
                 Quiver and gtlsserver: handshakes/s and server CPU per handshake, full and
                 resumed; TLS 1.3 and TLS 1.2 full handshakes the same way (`tls-handshake-load`)
                 against `quiver serve --tls` and `openssl s_server -rev`.
  DTLS           DTLS 1.2 with Quiver's client (`quiver-bench dtls-load`) against `quiver serve
                 --dtls --loops 1` (the listener): back-to-back handshakes vs pion (`pionecho`),
                 1 200-byte messages echoed vs `gnutls-serv`; DTLS 1.3 the same against BoringSSL
                 (`boring-dtls-server`, built here on swift-nio-ssl's BoringSSL).
  SCTP           usrsctp's `tsctp` sends 1 200-byte messages over UDP encapsulation to Quiver's
                 SCTPEndpoint (`quiver-bench sctp-sink`) and to tsctp's own sink: the rate and
                 the receiver's CPU per MB; then Quiver (`quiver-bench sctp-source`) and tsctp
                 send to tsctp's sink: the rate and the sender's CPU per MB.
  Lossy path     (opt-in: --only lossy; about 3 minutes with 3 runs) gtlsclient downloads through
                 `quiver-bench relay`, a UDP relay standing for a path with 1 % random loss each
                 way, 50 ms of round trip and a --lossy-rate-mbit bottleneck (drop-tail queue of one
                 bandwidth-delay product, 1500-byte MTU): `quiver serve --http3` with CUBIC and
                 with BBR against gtlsserver with `--cc=cubic`, `bbr` and `bbr2`, the same seed
                 for every server in a run; goodput and server CPU per MB.
  Latency        echo round trips of 64-byte messages with Quiver's client: Quiver's echo
                 server vs aioquic's (QUIC) and `openssl s_server -rev` (TLS); p50 and p99.
  Memory         server RSS per idle QUIC connection with --connections open (quiver-bench
                 idle-clients), Quiver vs gtlsserver; per idle TLS connection (quiver-bench
                 tls-idle-clients, Quiver only); and RSS --flood-wait seconds after a flood
                 of --flood connections closed, over RSS before the flood.
  Efficiency     server CPU time per byte in the bulk runs (hardware cycle counters are not
                 available in this VM: `perf stat` reports them unsupported), instructions per
                 byte under valgrind for a --valgrind-mb download, and heap allocations per
                 datagram in steady state (an LD_PRELOAD malloc counter).

Usage: python3 Benchmarks/run.py [--quick] [--write-docs] [--no-build]
Needs: swift, openssl, gtlsclient/gtlsserver (apt-get install ngtcp2-client ngtcp2-server),
python3 with aioquic 1.7.2, valgrind and gcc for the efficiency figures.
"""
import argparse
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUIVER = os.path.join(ROOT, ".build", "release", "quiver")
BENCH = os.path.join(ROOT, "Benchmarks", ".build", "release", "quiver-bench")
BORING_DTLS = os.path.join(ROOT, "Benchmarks", ".build", "release", "boring-dtls-server")
AIOQUIC_H3 = os.path.join(ROOT, "Tests", "QuiverConnectionTests", "Interop", "aioquic_h3_peer.py")
AIOQUIC_ECHO = os.path.join(ROOT, "Tests", "QuiverConnectionTests", "Interop", "aioquic_peer.py")
TICKS = os.sysconf("SC_CLK_TCK")
ROWS = []  # (section, metric, quiver, peer, ratio, better, note)


def log(message):
    print(message, file=sys.stderr, flush=True)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, socket.socket() as tcp:
        tcp.bind(("127.0.0.1", 0))
        port = tcp.getsockname()[1]
        udp.bind(("127.0.0.1", port))
        return port


def cpu_seconds(pid):
    """user+sys CPU seconds of a process (all its threads)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Server:
    """A server process; `ready` is a regex its output (stdout or stderr) must show first."""

    def __init__(self, command, ready, cwd=None, env=None):
        self.command = command
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        cwd=cwd, env=env)
        self.output = []
        self.ready = threading.Event()
        pattern = re.compile(ready)

        def collect():
            for raw in self.process.stdout:
                line = raw.decode(errors="replace")
                if len(self.output) < 2000:
                    self.output.append(line)
                if pattern.search(line):
                    self.ready.set()
        self.reader = threading.Thread(target=collect, daemon=True)
        self.reader.start()
        if not self.ready.wait(60):
            self.stop()
            raise RuntimeError(f"{command[0]} did not start:\n{''.join(self.output[-20:])}")

    @property
    def pid(self):
        return self.process.pid

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.reader.join(5)  # what it printed last (a summary at exit) is in `output` once stop returns


def quiver_http3(work, cert, key, port, env=None, extra=()):
    """`quiver serve --http3` on `port`, serving `work`."""
    return Server([QUIVER, "serve", "--http3", "--host", "127.0.0.1", "--port", str(port), "--root", work,
                   "--cert", cert, "--key", key, "--log-level", "notice", *extra], r"serving", env=env)


def http3_server(name, work, cert, key, port, env=None, cc=None):
    """The HTTP/3 file server `name` on `port`: "quiver", "quiver-1452" (datagrams kept to
    Ethernet's size, near gtlsserver's 1444 bytes) or "ngtcp2" (gtlsserver); with `cc`, the
    congestion controller (`quiver serve --congestion-control`: cubic, newreno, bbr;
    gtlsserver `--cc`: cubic, reno, bbr, bbr2), else the server's default (CUBIC for both)."""
    if name.startswith("quiver"):
        extra = (("--max-datagram-size", "1452") if name == "quiver-1452" else ()) + (("--congestion-control", cc) if cc else ())
        return quiver_http3(work, cert, key, port, env=env, extra=extra)
    return Server(["gtlsserver", "-q", "-d", work] + ([f"--cc={cc}"] if cc else []) + ["127.0.0.1", str(port), key, cert],
                  r"Using document root", env=env)


def run(command, timeout=600, stdin=None, cwd=None):
    started = time.monotonic()
    result = subprocess.run(command, input=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout, cwd=cwd)
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:3])}… failed ({result.returncode}): {result.stderr.decode(errors='replace')[-800:]}")
    return elapsed


def median_of(runs, body):
    values = [body() for _ in range(runs)]
    return statistics.median(values)


def row(section, metric, quiver, peer, higher_is_better, unit, note=""):
    if quiver is None or peer is None or peer == 0 or quiver == 0:
        ratio = None
    else:
        ratio = quiver / peer if higher_is_better else peer / quiver
    ROWS.append((section, metric, quiver, peer, ratio, unit, note))
    shown = f"{ratio:.2f}×" if ratio else "–"
    log(f"  {metric}: Quiver {fmt(quiver)} {unit}, peer {fmt(peer)} {unit} → {shown} ({'higher' if higher_is_better else 'lower'} is better)")


def fmt(value):
    if value is None:
        return "–"
    if isinstance(value, str):
        return value
    return f"{value:.3g}" if value < 100 else f"{value:.0f}"


# MARK: - Sections


def bulk_file(work, megabytes, name="bulk"):
    """A file the download sections fetch (`work`/`name`, `megabytes` MB of random bytes), made once."""
    path = os.path.join(work, name)
    if not os.path.exists(path) or os.path.getsize(path) != megabytes * 1_000_000:
        with open(path, "wb") as f:
            f.write(os.urandom(megabytes * 1_000_000))


def quic_bulk(work, cert, key, megabytes, runs):
    log(f"QUIC bulk: {megabytes} MB download")
    bulk_file(work, megabytes)
    results = {}
    for name in ("quiver", "quiver-1452", "ngtcp2"):
        port = free_port()
        server = http3_server(name, work, cert, key, port)
        try:
            def once():
                before = cpu_seconds(server.pid)
                wall = run(["gtlsclient", "-q", "--exit-on-all-streams-close", "--no-http-dump", "--max-data=64M",
                            "--max-stream-data-bidi-local=64M", "127.0.0.1", str(port), f"https://localhost:{port}/bulk"])
                return wall, cpu_seconds(server.pid) - before
            samples = [once() for _ in range(runs)]
            results[name] = (statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples))
        finally:
            server.stop()
    q, n = results["quiver"], results["ngtcp2"]
    row("QUIC bulk", f"{megabytes} MB download, gtlsclient → server (MB/s)", megabytes / q[0], megabytes / n[0], True, "MB/s",
        "same client; vs gtlsserver")
    row("QUIC bulk", "server CPU per MB (ms)", q[1] * 1000 / megabytes, n[1] * 1000 / megabytes, False, "ms/MB")
    # Path MTU discovery takes Quiver to 16 383-byte datagrams on loopback; gtlsserver sends
    # 1444-byte ones there. The same comparison with Quiver held to 1452 bytes
    # (--max-datagram-size) shows what the engines cost at (nearly) equal packet sizes.
    e = results["quiver-1452"]
    row("QUIC bulk", f"{megabytes} MB download, gtlsclient → server, both at 1452-byte datagrams (MB/s)", megabytes / e[0],
        megabytes / n[0], True, "MB/s", "quiver serve --max-datagram-size 1452; same client; vs gtlsserver")
    row("QUIC bulk", "server CPU per MB, both at 1452-byte datagrams (ms)", e[1] * 1000 / megabytes, n[1] * 1000 / megabytes,
        False, "ms/MB")
    clients = quic_client_bulk(work, cert, key, megabytes, runs)
    q, n = clients["quiver"], clients["ngtcp2"]
    row("QUIC bulk", f"{megabytes} MB download, client → gtlsserver (MB/s)", megabytes / q[0], megabytes / n[0], True, "MB/s",
        "same server; quiver get vs gtlsclient, wall time to exit (quiver get exits once its CONNECTION_CLOSE has left)")
    row("QUIC bulk", "client CPU per MB (ms)", q[1] * 1000 / megabytes, n[1] * 1000 / megabytes, False, "ms/MB")
    # References: Quiver's own client, and aioquic's, against Quiver's server.
    port = free_port()
    server = quiver_http3(work, cert, key, port)
    try:
        out = tempfile.mkdtemp(dir="/dev/shm")
        wall = median_of(runs, lambda: run([QUIVER, "get", "--insecure", "--out", out, f"https://127.0.0.1:{port}/bulk"]))
        shutil.rmtree(out, ignore_errors=True)
        small = max(1, megabytes // 10)
        with open(os.path.join(work, "small"), "wb") as f:
            f.write(os.urandom(small * 1_000_000))
        aio = median_of(1, lambda: run([sys.executable, AIOQUIC_H3, "client", "--port", str(port), "--insecure", "--timeout", "300", "/small"]))
        row("QUIC bulk", f"{megabytes} MB, Quiver client → Quiver server (MB/s)", megabytes / wall, megabytes / q[0], True, "MB/s",
            "reference: peer column is gtlsclient → Quiver")
        row("QUIC bulk", f"{small} MB, aioquic client → Quiver server (MB/s)", small / aio, None, True, "MB/s", "reference (Python client)")
    finally:
        server.stop()
    return results


def quic_client_bulk(work, cert, key, megabytes, runs):
    """The clients compared: `quiver get` and gtlsclient downloading the bulk file from one
    gtlsserver; (wall seconds, client CPU seconds), medians."""
    port = free_port()
    server = http3_server("ngtcp2", work, cert, key, port)
    commands = {  # both discard the body: quiver get writes it to stdout, which run() sends to /dev/null
        "quiver": [QUIVER, "get", "--insecure", f"https://127.0.0.1:{port}/bulk"],
        "ngtcp2": ["gtlsclient", "-q", "--exit-on-all-streams-close", "--no-http-dump", "--max-data=64M",
                   "--max-stream-data-bidi-local=64M", "127.0.0.1", str(port), f"https://localhost:{port}/bulk"],
    }
    try:
        def once(command):
            before = os.times()
            wall = run(command)
            after = os.times()
            return wall, (after.children_user - before.children_user) + (after.children_system - before.children_system)
        results = {}
        for _ in range(runs):  # alternated, so both see the same machine
            for name, command in commands.items():
                results.setdefault(name, []).append(once(command))
        return {name: (statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples))
                for name, samples in results.items()}
    finally:
        server.stop()


# The lossy path of issue 20: 1 % random loss each way and 50 ms of round trip.
LOSSY_LOSS, LOSSY_RTT_MS = 0.01, 50
# (server, congestion controller, the Quiver row it is the peer of); loss-based and BBR rows download files of their own sizes.
LOSSY_SERVERS = [("quiver", "cubic", None), ("ngtcp2", "cubic", "cubic"),
                 ("quiver", "bbr", None), ("ngtcp2", "bbr", "bbr"), ("ngtcp2", "bbr2", "bbr")]


def udp_socket_drops(pid):
    """Datagrams the kernel dropped at the UDP sockets of process `pid` (full receive buffers:
    the drops column of /proc/net/udp and udp6), summed; 0 once it has exited."""
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        return 0
    drops = 0
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        with open(table) as f:
            next(f)
            drops += sum(int(fields[12]) for fields in map(str.split, f) if fields[9] in inodes)
    return drops


def realtime_priority():
    """`chrt -f 10` where it is allowed (root), else nothing: for the relay, which stands for the
    network, and the client, the measuring end, which the machine's other load must delay
    neither. With builds running beside, at normal priority the relay was late by up to 120 ms,
    and gtlsclient's socket (the default 208 KiB receive buffer, 17 ms at 100 Mbit/s) overflowed:
    up to 1 018 datagrams lost in a 100 MB download on top of the relay's 1 %."""
    if shutil.which("chrt") and subprocess.run(["chrt", "-f", "10", "true"], capture_output=True).returncode == 0:
        return ["chrt", "-f", "10"]
    return []


def lossy_download(work, cert, key, server_name, cc, path, seed, rate_mbit):
    """One download of `path` by gtlsclient through a `quiver-bench relay` (seeded `seed`) in front
    of `server_name` with congestion controller `cc`: (seconds, server CPU seconds, relay CPU
    seconds, the relay's counters per direction, and the datagrams the kernel dropped at the
    client's, server's and relay's sockets — losses the relay did not choose)."""
    port, relay_port = free_port(), free_port()
    server = http3_server(server_name, work, cert, key, port, cc=cc)
    try:
        relay = Server(realtime_priority() + [BENCH, "relay", "--listen", f"127.0.0.1:{relay_port}", "--to", f"127.0.0.1:{port}",
                        "--loss", str(LOSSY_LOSS), "--delay-ms", str(LOSSY_RTT_MS / 2), "--rate-mbit", str(rate_mbit),
                        "--seed", str(seed)], r"READY relay")
        try:
            server_drops, relay_drops = udp_socket_drops(server.pid), udp_socket_drops(relay.pid)
            before, relay_before = cpu_seconds(server.pid), cpu_seconds(relay.pid)
            errors = tempfile.TemporaryFile()
            started = time.monotonic()
            client = subprocess.Popen(realtime_priority() + ["gtlsclient", "-q", "--exit-on-all-streams-close", "--no-http-dump", "--max-data=64M",
                                       "--max-stream-data-bidi-local=64M", "127.0.0.1", str(relay_port),
                                       f"https://localhost:{relay_port}/{path}"], stdout=subprocess.DEVNULL, stderr=errors)
            client_drops = [0]

            def watch():  # the client socket's drops, read while it lives
                while client.poll() is None:
                    client_drops[0] = max(client_drops[0], udp_socket_drops(client.pid))
                    time.sleep(0.1)
            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
            try:
                status = client.wait(600)
            except subprocess.TimeoutExpired:
                client.kill()
                raise
            wall = time.monotonic() - started
            watcher.join()
            if status != 0:
                raise RuntimeError(f"gtlsclient failed ({status}): {(errors.seek(0), errors.read())[1].decode(errors='replace')[-800:]}")
            cpu, relay_cpu = cpu_seconds(server.pid) - before, cpu_seconds(relay.pid) - relay_before
            drops = {"client": client_drops[0], "server": udp_socket_drops(server.pid) - server_drops,
                     "relay": udp_socket_drops(relay.pid) - relay_drops}
        finally:
            relay.stop()
        counters = {}
        for line in relay.output:
            if match := re.match(r"RESULT relay (\w+) (.*)", line):
                counters[match.group(1)] = {k: int(v) for k, v in (pair.split("=") for pair in match.group(2).split())}
        return wall, cpu, relay_cpu, counters, drops
    finally:
        server.stop()


def lossy(work, cert, key, runs, rate_mbit, loss_based_mb, bbr_mb):
    """Downloads over the lossy path (LOSSY_LOSS, LOSSY_RTT_MS, a `rate_mbit` bottleneck): every
    server of LOSSY_SERVERS once per run, alternated, each run with its own relay seed shared
    by all servers (so each sees the same loss pattern, datagram by datagram, as far as the
    flows send alike). `loss_based_mb` for CUBIC, `bbr_mb` for BBR: about 10–20 s each at the
    rates they reach (Mathis: CUBIC ≈ 2.5–3 Mbit/s here)."""
    log(f"Lossy path: {LOSSY_LOSS:.0%} loss each way, {LOSSY_RTT_MS} ms RTT, {rate_mbit} Mbit/s bottleneck; "
        f"{loss_based_mb} MB with CUBIC, {bbr_mb} MB with BBR; {runs} runs")
    sizes = {"cubic": loss_based_mb, "bbr": bbr_mb, "bbr2": bbr_mb}
    for cc, megabytes in sizes.items():
        bulk_file(work, megabytes, f"lossy-{megabytes}")
    samples = {}
    for seed in range(1, runs + 1):
        for server_name, cc, _ in LOSSY_SERVERS:
            sample = lossy_download(work, cert, key, server_name, cc, f"lossy-{sizes[cc]}", seed, rate_mbit)
            samples.setdefault((server_name, cc), []).append(sample)
            wall, cpu, relay_cpu, counters, drops = sample
            down, up = counters.get("to_client", {}), counters.get("to_server", {})
            log(f"  seed {seed}, {server_name} {cc}: {sizes[cc] * 8 / wall:.2f} Mbit/s in {wall:.1f} s, server CPU "
                f"{cpu * 1000 / sizes[cc]:.1f} ms/MB, relay CPU {relay_cpu * 1000 / sizes[cc]:.1f} ms/MB; relay to client: "
                f"{down.get('forwarded', 0)} datagrams of {down.get('bytes', 0) / max(1, down.get('forwarded', 1)):.0f} bytes on "
                f"average, lost {down.get('dropped_loss', 0)}, queue-dropped {down.get('dropped_queue', 0)}, oversized "
                f"{down.get('dropped_size', 0)}, late by {down.get('late_us_mean', 0)} µs on average ({down.get('late_us_max', 0)} at most); "
                f"to server: {up.get('forwarded', 0)} forwarded, lost {up.get('dropped_loss', 0)}; dropped by the kernel at the "
                f"sockets of the client {drops['client']}, server {drops['server']}, relay {drops['relay']}")
    medians = {}
    for (server_name, cc), runs_of in samples.items():
        megabytes = sizes[cc]
        medians[(server_name, cc)] = (megabytes / statistics.median(s[0] for s in runs_of),
                                      statistics.median(s[1] for s in runs_of) * 1000 / megabytes,
                                      statistics.median(s[2] for s in runs_of) * 1000 / megabytes)
    names = {"cubic": "CUBIC", "bbr": "BBR", "bbr2": "BBRv2"}
    for server_name, cc, quiver_cc in LOSSY_SERVERS:
        if server_name != "ngtcp2":
            continue
        q, n = medians[("quiver", quiver_cc)], medians[("ngtcp2", cc)]
        against = "" if cc == quiver_cc else f", against gtlsserver --cc={cc}"
        row("Lossy path", f"{names[quiver_cc]}{against}: goodput, {sizes[cc]} MB download (Mbit/s)", q[0] * 8, n[0] * 8, True, "Mbit/s",
            f"{LOSSY_LOSS:.0%} loss, {LOSSY_RTT_MS} ms RTT, {rate_mbit} Mbit/s (quiver-bench relay); MB/s: Quiver {q[0]:.3g}, "
            f"gtlsserver --cc={cc} {n[0]:.3g}; relay CPU {q[2]:.2g} / {n[2]:.2g} ms/MB")
        row("Lossy path", f"{names[quiver_cc]}{against}: server CPU per MB (ms)", q[1], n[1], False, "ms/MB")


def tls_bulk(work, cert, key, megabytes, runs):
    for version in ("1.3", "1.2"):
        tls_bulk_version(work, cert, key, megabytes, runs, version)


def tls_bulk_version(work, cert, key, megabytes, runs, version):
    flag = "-tls1_3" if version == "1.3" else "-tls1_2"
    log(f"TLS bulk: {megabytes} MB download over TLS {version}/TCP")
    bulk_file(work, megabytes)
    results = {}
    request = b"GET /bulk HTTP/1.0\r\n\r\n"
    for name in ("quiver", "openssl"):
        port = free_port()
        if name == "quiver":
            server = Server([BENCH, "tls-www", "--port", str(port), "--root", work, "--cert", cert, "--key", key], r"READY")
        else:
            server = Server(["openssl", "s_server", "-WWW", flag, "-accept", str(port), "-cert", cert, "-key", key],
                            r"ACCEPT", cwd=work)
        try:
            def once():
                before = cpu_seconds(server.pid)
                wall = run(["openssl", "s_client", "-quiet", flag, "-connect", f"127.0.0.1:{port}"], stdin=request)
                return wall, cpu_seconds(server.pid) - before
            samples = [once() for _ in range(runs)]
            results[name] = (statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples))
        finally:
            server.stop()
    q, o = results["quiver"], results["openssl"]
    row("TLS bulk", f"TLS {version}: {megabytes} MB download, openssl s_client {flag} → server (MB/s)", megabytes / q[0], megabytes / o[0],
        True, "MB/s", f"same client; vs openssl s_server -WWW {flag}")
    row("TLS bulk", f"TLS {version}: server CPU per MB (ms)", q[1] * 1000 / megabytes, o[1] * 1000 / megabytes, False, "ms/MB")


def load(server, arguments):
    """Runs a `quiver-bench` handshake load against `server`; (handshakes/s, server ms per handshake, failures)."""
    before = cpu_seconds(server.pid)
    output = subprocess.run([BENCH] + arguments, capture_output=True, timeout=600)
    cpu = cpu_seconds(server.pid) - before
    match = re.search(rb"handshakes=(\d+) failed=(\d+) resumed=(\d+) seconds=([\d.]+)", output.stdout)
    if not match:
        raise RuntimeError(f"{arguments[0]} failed: {output.stderr.decode(errors='replace')[-500:]}")
    done, failed, seconds = int(match.group(1)), int(match.group(2)), float(match.group(4))
    return done / seconds, cpu * 1000 / max(done, 1), failed


def handshakes(work, cert, key, seconds, concurrency):
    log(f"Handshakes: {concurrency} in flight from one process for {seconds} s per server (QUIC full and resumed, TLS full)")
    for resumed in (False, True):
        results = {}
        for name in ("quiver", "ngtcp2"):
            port = free_port()
            server = http3_server(name, work, cert, key, port)
            try:
                results[name] = load(server, ["handshake-load", "--port", str(port), "--seconds", str(seconds),
                                              "--concurrency", str(concurrency)] + (["--resume"] if resumed else []))
            finally:
                server.stop()
        kind = "resumed" if resumed else "full"
        q, n = results["quiver"], results["ngtcp2"]
        row("Handshakes", f"QUIC {kind} handshakes/s ({concurrency} in flight)", q[0], n[0], True, "1/s",
            f"quiver-bench handshake-load, vs gtlsserver; failures Quiver {q[2]}, ngtcp2 {n[2]}")
        row("Handshakes", f"server CPU per QUIC {kind} handshake (ms)", q[1], n[1], False, "ms", "target ≤ 1.0× gtlsserver's")
    threads = max(2, concurrency // 2)
    for version in ("1.3", "1.2"):
        tls_handshakes(cert, key, seconds, threads, version)


def tls_handshakes(cert, key, seconds, threads, version):
    flag = "-tls1_3" if version == "1.3" else "-tls1_2"
    results = {}
    for name in ("quiver", "openssl"):
        port = free_port()
        if name == "quiver":
            server = Server([QUIVER, "serve", "--tls", "--host", "127.0.0.1", "--port", str(port), "--cert", cert, "--key", key,
                             "--log-level", "notice"], r"serving")
        else:
            server = Server(["openssl", "s_server", "-rev", flag, "-accept", str(port), "-cert", cert, "-key", key], r"ACCEPT")
        try:
            results[name] = load(server, ["tls-handshake-load", "--port", str(port), "--seconds", str(seconds),
                                          "--concurrency", str(threads)] + (["--tls12"] if version == "1.2" else []))
        finally:
            server.stop()
    q, o = results["quiver"], results["openssl"]
    row("Handshakes", f"TLS {version} full handshakes/s ({threads} client threads)", q[0], o[0], True, "1/s",
        f"quiver-bench tls-handshake-load{' --tls12' if version == '1.2' else ''}: connect, a line echoed, close; vs openssl s_server -rev {flag}; "
        f"failures Quiver {q[2]}, openssl {o[2]}")
    row("Handshakes", f"server CPU per TLS {version} full handshake (ms)", q[1], o[1], False, "ms")


def dtls_echo(server, port, messages, flags):
    """One `dtls-load` connection echoing `messages` 1 200-byte messages through `server` on
    `port`; (messages/s, server µs per message)."""
    before = cpu_seconds(server.pid)
    output = subprocess.run([BENCH, "dtls-load", "--port", str(port), "--messages", str(messages), "--size", "1200"] + flags,
                            capture_output=True, timeout=300)
    cpu = cpu_seconds(server.pid) - before
    match = re.search(rb"seconds=([\d.]+) echoed=(\d+)", output.stdout)
    if not match:
        raise RuntimeError(f"dtls-load failed: {output.stderr.decode(errors='replace')[-300:]}")
    elapsed, echoed = float(match.group(1)), int(match.group(2))
    return echoed / elapsed, cpu * 1e6 / max(echoed, 1)


def dtls(cert, key, seconds, messages):
    """DTLS 1.2 with Quiver's client against `quiver serve --dtls --loops 1` (the listener, one
    event loop, a task per connection) and a peer server:
    back-to-back full handshakes from one client thread against pion (`pionecho`, built by
    .ci/run; gnutls-serv's UDP server takes about 150 ms per new client, and `openssl s_server
    -dtls1_2 -listen` serves one client and does not listen again), then one connection echoing
    1 200-byte messages (32 in flight) against `gnutls-serv --udp --echo`."""
    log(f"DTLS 1.2: handshakes for {seconds} s, then {messages} echoed 1 200-byte messages")

    def start(name, port):
        if name == "quiver":
            return Server([QUIVER, "serve", "--dtls", "--loops", "1", "--host", "127.0.0.1", "--port", str(port), "--cert", cert,
                           "--key", key, "--log-level", "notice"], r"serving DTLS")
        if name == "pion":
            return Server(["pionecho", "-mode", "server", "-addr", f"127.0.0.1:{port}", "-cert", cert, "-key", key], r"listening")
        return Server(["gnutls-serv", "--udp", "--echo", "-p", str(port), "--x509certfile", cert, "--x509keyfile", key],
                      r"listening on IPv4")

    handshake_results, echo_results = {}, {}
    for name in ("quiver", "pion"):
        port = free_port()
        server = start(name, port)
        try:
            handshake_results[name] = load(server, ["dtls-load", "--port", str(port), "--seconds", str(seconds)])
        finally:
            server.stop()
    for name in ("quiver", "gnutls"):
        port = free_port()
        server = start(name, port)
        try:
            echo_results[name] = dtls_echo(server, port, messages, [])
        finally:
            server.stop()
    q, p = handshake_results["quiver"], handshake_results["pion"]
    row("DTLS", "DTLS 1.2 full handshakes/s (one client thread, back to back)", q[0], p[0], True, "1/s",
        f"quiver-bench dtls-load; vs pion/dtls (pionecho); failures Quiver {q[2]}, pion {p[2]}")
    row("DTLS", "server CPU per DTLS 1.2 full handshake (ms)", q[1], p[1], False, "ms")
    q, g = echo_results["quiver"], echo_results["gnutls"]
    row("DTLS", "echo of 1 200-byte messages, 32 in flight (messages/s)", q[0], g[0], True, "1/s",
        "one connection; vs gnutls-serv --udp --echo, which also prints every message it echoes")
    row("DTLS", "server CPU per echoed message (µs)", q[1], g[1], False, "µs")
    dtls13(cert, key, seconds, messages, start)


def dtls13(cert, key, seconds, messages, start):
    """DTLS 1.3 with Quiver's client against `quiver serve --dtls --loops 1` and BoringSSL
    (`boring-dtls-server`, which serves one client address at a time: each client thread keeps
    one socket for all its connections, `--same-port`, for both servers). Quiver answers every
    first ClientHello with a stateless HelloRetryRequest (its cookie), one round trip more than
    BoringSSL's server, which keeps state from the first datagram."""
    log(f"DTLS 1.3: handshakes for {seconds} s, then {messages} echoed 1 200-byte messages")

    def start13(name, port):
        if name == "quiver":
            return start("quiver", port)
        return Server([BORING_DTLS, str(port), cert, key, "1.3"], r"listening")

    handshakes, echoes = {}, {}
    for name in ("quiver", "boring"):
        port = free_port()
        server = start13(name, port)
        try:
            handshakes[name] = load(server, ["dtls-load", "--port", str(port), "--seconds", str(seconds), "--dtls13", "--same-port"])
        finally:
            server.stop()
    for name in ("quiver", "boring"):
        port = free_port()
        server = start13(name, port)
        try:
            echoes[name] = dtls_echo(server, port, messages, ["--dtls13"])
        finally:
            server.stop()
    q, b = handshakes["quiver"], handshakes["boring"]
    row("DTLS", "DTLS 1.3 full handshakes/s (one client thread, back to back)", q[0], b[0], True, "1/s",
        f"quiver-bench dtls-load --dtls13 --same-port; vs BoringSSL (boring-dtls-server); Quiver's cookie round trip included; "
        f"failures Quiver {q[2]}, BoringSSL {b[2]}")
    row("DTLS", "server CPU per DTLS 1.3 full handshake (ms)", q[1], b[1], False, "ms")
    q, b = echoes["quiver"], echoes["boring"]
    row("DTLS", "DTLS 1.3 echo of 1 200-byte messages, 32 in flight (messages/s)", q[0], b[0], True, "1/s", "one connection; vs BoringSSL")
    row("DTLS", "server CPU per DTLS 1.3 echoed message (µs)", q[1], b[1], False, "µs")


TSCTP = "/usr/lib/usrsctp/tsctp"


def sctp(messages, runs):
    """SCTP over UDP encapsulation (RFC 6951): usrsctp's `tsctp` sends `messages` messages of
    1 200 bytes on one association to a sink — `quiver-bench sctp-sink` (Quiver's SCTPEndpoint)
    or tsctp's own sink (usrsctp); the same sender, so the receivers are compared: the rate
    tsctp reports, and the receiver's CPU time per MB."""
    if not os.path.exists(TSCTP):
        log("SCTP: skipped (apt-get install libusrsctp-examples)")
        return
    log(f"SCTP: {messages} messages of 1 200 bytes from tsctp, {runs} runs")
    megabytes = messages * 1200 / 1e6

    def tsctp_sink(sink_port, source_port):
        # Debian's usrsctp logs every packet on stdout: to /dev/null, not through a pipe this
        # script would have to read (the logging itself it still pays for).
        return subprocess.Popen([TSCTP, "-E", str(sink_port), "-U", str(source_port), "-L", "127.0.0.1", "-p", "5001"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def send(name, sink_port, source_port):
        """One sender's run to the sink on `sink_port`; its rate in MB/s. usrsctp binds its UDP
        port before its SCTP socket listens: an INIT in between is aborted and the sender
        exits at once. It is started again (a readiness probe, as the interop tests' connect
        retry), at most 20 times."""
        for _ in range(20):
            if name == "quiver":
                output = subprocess.run([BENCH, "sctp-source", "--port", str(sink_port), "--messages", str(messages)],
                                        capture_output=True, timeout=600)
                match = re.search(rb"seconds=([\d.]+) bytes=(\d+)", output.stdout)
                if match:
                    return float(match.group(2)) / float(match.group(1)) / 1e6
            else:
                output = subprocess.run([TSCTP, "-E", str(source_port), "-U", str(sink_port), "-L", "127.0.0.1", "-p", "5001",
                                         "-n", str(messages), "-l", "1200", "127.0.0.1"], capture_output=True, timeout=600)
                match = re.search(rb"Throughput was ([\d.]+) Byte/sec", output.stdout)
                if match:
                    return float(match.group(1)) / 1e6
            time.sleep(0.1)
        raise RuntimeError(f"{name} sender failed: {output.stdout.decode(errors='replace')[-300:]}")

    # The receivers compared: tsctp sends to Quiver's sink (quiver-bench sctp-sink) and to its own.
    results = {}
    for name in ("quiver", "usrsctp"):
        rates, cpus = [], []
        for _ in range(runs):
            sink_port, source_port = free_port(), free_port()
            if name == "quiver":
                sink = Server([BENCH, "sctp-sink", "--port", str(sink_port), "--sctp-port", "5001", "--timeout", "300"], r"listening")
            else:
                sink = tsctp_sink(sink_port, source_port)
            try:
                before = cpu_seconds(sink.pid)
                rates.append(send("usrsctp", sink_port, source_port))
                if name == "quiver":
                    sink.process.wait(60)
                    result = re.search(r"cpu=([\d.]+)", "".join(sink.output))
                    cpus.append(float(result.group(1)) * 1000 / megabytes)
                else:
                    time.sleep(1)  # the sink answers the SHUTDOWN
                    cpus.append((cpu_seconds(sink.pid) - before) * 1000 / megabytes)
            finally:
                if name == "quiver":
                    sink.stop()
                else:
                    sink.kill()
                    sink.wait()
        results[name] = (statistics.median(rates), statistics.median(cpus))
    q, u = results["quiver"], results["usrsctp"]
    row("SCTP", "receive rate from tsctp, 1 200-byte messages (MB/s)", q[0], u[0], True, "MB/s",
        "UDP encapsulation; the same usrsctp sender; vs usrsctp's tsctp sink")
    row("SCTP", "receiver CPU per MB (ms)", q[1], u[1], False, "ms",
        "Debian's usrsctp logs every packet (to /dev/null here), which its sink pays for")
    # The senders compared: Quiver (quiver-bench sctp-source) and tsctp, to the same tsctp sink.
    results = {}
    for name in ("quiver", "usrsctp"):
        rates, cpus = [], []
        for _ in range(runs):
            sink_port, source_port = free_port(), free_port()
            sink = tsctp_sink(sink_port, source_port)
            try:
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                rates.append(send(name, sink_port, source_port))
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpus.append(((after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)) * 1000 / megabytes)
            finally:
                sink.kill()
                sink.wait()
        results[name] = (statistics.median(rates), statistics.median(cpus))
    q, u = results["quiver"], results["usrsctp"]
    row("SCTP", "send rate to tsctp's sink, 1 200-byte messages (MB/s)", q[0], u[0], True, "MB/s",
        "UDP encapsulation; the same usrsctp receiver; vs usrsctp's tsctp sender")
    row("SCTP", "sender CPU per MB (ms)", q[1], u[1], False, "ms",
        "whole processes (start-up included, retries too); tsctp logs every packet, which its sender pays for")

def latency(work, cert, key, count):
    log(f"Latency: {count} echo round trips of 64 bytes")
    results = {}
    port = free_port()
    quiver = Server([QUIVER, "serve", "--host", "127.0.0.1", "--port", str(port), "--cert", cert, "--key", key,
                     "--log-level", "notice"], r"serving QUIC")

    def measure(arguments):
        output = subprocess.run([BENCH, "echo-latency", "--count", str(count)] + arguments, capture_output=True, timeout=300)
        match = re.search(rb"p50_us=([\d.]+) p99_us=([\d.]+)", output.stdout)
        if not match:
            raise RuntimeError(f"echo-latency failed: {output.stderr.decode(errors='replace')[-500:]}")
        return float(match.group(1)), float(match.group(2))
    try:
        results["quic-quiver"] = measure(["--quic", "--port", str(port)])
        results["tls-quiver"] = measure(["--tls", "--port", str(port)])
    finally:
        quiver.stop()
    aio = Server([sys.executable, "-u", AIOQUIC_ECHO, "server", "--port", "0", "--cert", cert, "--key", key], r"READY")
    try:
        aio_port = int(next(line for line in aio.output if line.startswith("READY")).split()[1])
        results["quic-aioquic"] = measure(["--quic", "--port", str(aio_port)])
    finally:
        aio.stop()
    port = free_port()
    ossl = Server(["openssl", "s_server", "-rev", "-tls1_3", "-accept", str(port), "-cert", cert, "-key", key], r"ACCEPT")
    try:
        results["tls-openssl"] = measure(["--tls", "--port", str(port)])
    finally:
        ossl.stop()
    for transport, peer in (("quic", "aioquic"), ("tls", "openssl")):
        q, p = results[f"{transport}-quiver"], results[f"{transport}-{peer}"]
        label = "QUIC" if transport == "quic" else "TLS"
        row("Latency", f"{label} echo p50 (µs)", q[0], p[0], False, "µs", f"vs {peer} echo server, Quiver's client")
        row("Latency", f"{label} echo p99 (µs)", q[1], p[1], False, "µs")


def warmed_up_rss(server, port):
    """The server's RSS after ten connections came and went (first-use allocations made)."""
    # The warm-up connections end with CONNECTION_CLOSE: left open they would count against the
    # server's connection limit (10 000 by default) during the measurement.
    subprocess.run([BENCH, "idle-clients", "--port", str(port), "--count", "10", "--hold", "0", "--close"],
                   capture_output=True, timeout=60)
    time.sleep(2)
    return rss_kib(server.pid)


def rss_with_idle_clients(server, arguments):
    """Runs `quiver-bench ARGUMENTS --hold 3`; the server's RSS (KiB) and thread count a second
    after all its connections are established."""
    client = subprocess.Popen([BENCH] + arguments + ["--hold", "3"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak, threads = None, None
    for raw in client.stdout:
        if raw.startswith(b"ESTABLISHED"):
            time.sleep(1)
            peak = rss_kib(server.pid)
            threads = len(os.listdir(f"/proc/{server.pid}/task"))
    client.wait(60)
    if client.returncode != 0 or peak is None:
        raise RuntimeError(f"{arguments[0]} failed: {client.stderr.read().decode(errors='replace')[-500:]}")
    return peak, threads


def memory(work, cert, key, connections):
    log(f"Memory: {connections} idle QUIC connections")
    results = {}
    threads = {}
    for name in ("quiver", "ngtcp2"):
        port = free_port()
        server = http3_server(name, work, cert, key, port)
        try:
            base = warmed_up_rss(server, port)
            peak, threads[name] = rss_with_idle_clients(server, ["idle-clients", "--port", str(port), "--count", str(connections)])
            results[name] = (peak - base) / connections
        finally:
            server.stop()
    row("Memory", f"server RSS per idle QUIC connection, {connections} open (KiB)", results["quiver"], results["ngtcp2"], False, "KiB",
        "target ≤ 16 KiB")
    row("Memory", f"server threads with {connections} connections open", threads.get("quiver"), threads.get("ngtcp2"), False, "",
        f"target ≤ 2 × cores + 4 = {2 * (os.cpu_count() or 1) + 4}")
    tls_memory(cert, key, connections)


def tls_memory(cert, key, connections):
    """RSS per idle TLS connection of `quiver serve --tls` (echo). No peer: `openssl s_server`
    serves one connection at a time, and `gnutls-serv --echo` fails handshakes when 200 arrive
    at once."""
    log(f"Memory: {connections} idle TLS connections")
    port = free_port()
    server = Server([QUIVER, "serve", "--tls", "--host", "127.0.0.1", "--port", str(port), "--cert", cert, "--key", key,
                     "--log-level", "notice"], r"serving")
    try:
        subprocess.run([BENCH, "tls-idle-clients", "--port", str(port), "--count", "10", "--hold", "0"], capture_output=True, timeout=60)
        time.sleep(2)
        base = rss_kib(server.pid)
        peak, _ = rss_with_idle_clients(server, ["tls-idle-clients", "--port", str(port), "--count", str(connections)])
    finally:
        server.stop()
    row("Memory", f"server RSS per idle TLS connection, {connections} open (KiB)", (peak - base) / connections, None, False, "KiB",
        "quiver serve --tls (echo), no peer; target ≤ 8 KiB")


def flood_memory(work, cert, key, connections, wait):
    """Server RSS `wait` s after a flood of `connections` QUIC connections closed, over RSS before it."""
    log(f"Memory after a flood: {connections} connections opened and closed, RSS {wait} s later")
    results = {}
    for name in ("quiver", "ngtcp2"):
        port = free_port()
        server = http3_server(name, work, cert, key, port)
        try:
            before = warmed_up_rss(server, port)
            flood = subprocess.run([BENCH, "idle-clients", "--port", str(port), "--count", str(connections), "--hold", "1", "--close"],
                                   capture_output=True, timeout=300)
            if flood.returncode != 0:
                raise RuntimeError(f"idle-clients failed against {name}: {flood.stderr.decode(errors='replace')[-500:]}")
            time.sleep(wait)
            results[name] = (rss_kib(server.pid) - before) * 100 / before
        finally:
            server.stop()
    row("Memory", f"server RSS {wait} s after {connections} connections closed, over RSS before (%)",
        results["quiver"], results["ngtcp2"], False, "%", "target ≤ 10 %")


# docs/PERFORMANCE.md from this heading on is written by hand and kept by --write-docs.
ANALYSIS_HEADING = "## Reading these numbers"

MALLOC_COUNTER = r"""
#define _GNU_SOURCE
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
static atomic_ulong count;
void *malloc(size_t n) { atomic_fetch_add_explicit(&count, 1, memory_order_relaxed); return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { atomic_fetch_add_explicit(&count, 1, memory_order_relaxed); return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { atomic_fetch_add_explicit(&count, 1, memory_order_relaxed); return __libc_realloc(p, n); }
static void report(int sig) {
    (void)sig;
    char text[32]; int i = 31; unsigned long v = atomic_load(&count); text[i--] = '\n';
    do { text[i--] = '0' + v % 10; v /= 10; } while (v && i >= 0);
    const char *path = getenv("MALLOC_COUNT_FILE");
    if (!path) return;
    int fd = open(path, 01 | 0100 | 01000, 0644);  /* O_WRONLY|O_CREAT|O_TRUNC */
    if (fd >= 0) { write(fd, text + i + 1, 31 - i); close(fd); }
}
__attribute__((constructor)) static void install(void) { signal(SIGUSR2, report); }
"""


def efficiency(work, cert, key, megabytes, valgrind_mb):
    log("Efficiency: allocations per datagram; instructions per byte under valgrind")
    # Heap allocations per datagram in a steady-state download, both servers.
    source = os.path.join(work, "malloc_count.c")
    library = os.path.join(work, "malloc_count.so")
    with open(source, "w") as f:
        f.write(MALLOC_COUNTER.replace("#include <unistd.h>", "#include <unistd.h>\n#include <fcntl.h>"))
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-o", library, source], check=True)
    size = megabytes * 1_000_000
    # A file of its own: the count is divided by its size (the bulk sections' file is larger).
    with open(os.path.join(work, "abulk"), "wb") as f:
        f.write(os.urandom(size))
    allocations = {}
    for name in ("quiver", "ngtcp2"):
        port = free_port()
        counter_file = os.path.join(work, f"mallocs-{name}")
        env = dict(os.environ, LD_PRELOAD=library, MALLOC_COUNT_FILE=counter_file)
        server = http3_server(name, work, cert, key, port, env=env)
        try:
            def count():
                os.kill(server.pid, signal.SIGUSR2)
                time.sleep(0.2)
                with open(counter_file) as f:
                    return int(f.read().strip() or 0)
            run(["gtlsclient", "-q", "--exit-on-all-streams-close", "--no-http-dump", "127.0.0.1", str(port), f"https://localhost:{port}/tiny"])
            before = count()
            run(["gtlsclient", "-q", "--exit-on-all-streams-close", "--no-http-dump", "--max-data=64M", "--max-stream-data-bidi-local=64M",
                 "127.0.0.1", str(port), f"https://localhost:{port}/abulk"])
            allocations[name] = (count() - before) / (size / 1200)
        finally:
            server.stop()
    row("Efficiency", "heap allocations per 1200 bytes sent (download)", allocations["quiver"], allocations["ngtcp2"], False,
        "allocs", "LD_PRELOAD malloc/calloc/realloc counter, divided by bytes / 1200")
    if valgrind_mb <= 0 or not shutil.which("valgrind"):
        return
    # Instructions per byte: callgrind's total for a download minus an idle run's.
    with open(os.path.join(work, "vbulk"), "wb") as f:
        f.write(os.urandom(valgrind_mb * 1_000_000))
    instructions = {}
    # Valgrind 3.19 cannot read the DWARF 5 debug information of Swift 6 binaries: use a stripped copy.
    stripped = os.path.join(work, "quiver-stripped")
    subprocess.run(["strip", "-o", stripped, QUIVER], check=True)
    for name in ("quiver", "quiver-1452", "ngtcp2"):
        totals = []
        for path in (None, "/vbulk"):
            port = free_port()
            command = ([stripped, "serve", "--http3", "--host", "127.0.0.1", "--port", str(port), "--root", work, "--cert", cert,
                        "--key", key, "--log-level", "notice"] + (["--max-datagram-size", "1452"] if name == "quiver-1452" else [])
                       if name.startswith("quiver")
                       else ["gtlsserver", "-q", "-d", work, "127.0.0.1", str(port), key, cert])
            server = Server(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"] + command, r"serving|Using document root")
            paths = ["/tiny"] + ([path] if path else [])
            try:
                run(["gtlsclient", "-q", "--exit-on-all-streams-close", "--no-http-dump", "--timeout=120s", "--max-data=64M",
                     "--max-stream-data-bidi-local=64M", "127.0.0.1", str(port)] + [f"https://localhost:{port}{p}" for p in paths], timeout=900)
            finally:
                server.process.send_signal(signal.SIGINT)
                try:
                    server.process.wait(120)
                except subprocess.TimeoutExpired:
                    server.process.kill()
                time.sleep(0.5)
            text = "".join(server.output)
            match = re.search(r"Collected : (\d+)", text) or re.search(r"refs:\s+([\d,]+)", text)
            totals.append(int(match.group(1).replace(",", "")) if match else None)
        if None not in totals:
            instructions[name] = (totals[1] - totals[0]) / (valgrind_mb * 1_000_000)
    row("Efficiency", f"server instructions per byte ({valgrind_mb} MB download, callgrind)", instructions.get("quiver"),
        instructions.get("ngtcp2"), False, "instr/B", "valgrind: run minus an idle run")
    row("Efficiency", f"server instructions per byte, both at 1452-byte datagrams ({valgrind_mb} MB download, callgrind)",
        instructions.get("quiver-1452"), instructions.get("ngtcp2"), False, "instr/B", "quiver serve --max-datagram-size 1452")


# MARK: - Output


def markdown():
    lines = ["| Section | Metric | Quiver | Peer | Quiver vs peer | Note |", "|---|---|---|---|---|---|"]
    for section, metric, quiver, peer, ratio, unit, note in ROWS:
        lines.append(f"| {section} | {metric} | {fmt(quiver)} | {fmt(peer)} | {f'{ratio:.2f}×' if ratio else '–'} | {note} |")
    return "\n".join(lines)


def svg(path):
    bars = [(f"{section}: {metric}", ratio) for section, metric, _, _, ratio, _, _ in ROWS if ratio]
    width, left, bar, gap = 900, 430, 18, 8
    height = 60 + len(bars) * (bar + gap)
    scale = (width - left - 60) / max([2.0] + [r for _, r in bars])
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
           f'<text x="10" y="20" font-size="14">Quiver vs peer (same run, same machine): > 1 means Quiver is better</text>']
    x1 = left + scale
    out.append(f'<line x1="{x1}" y1="30" x2="{x1}" y2="{height - 10}" stroke="#888" stroke-dasharray="4,3"/>')
    out.append(f'<text x="{x1 + 3}" y="42" fill="#666">1×</text>')
    for index, (label, ratio) in enumerate(bars):
        y = 50 + index * (bar + gap)
        color = "#2a7" if ratio >= 1 else "#d64"
        escaped = label.replace("&", "&amp;").replace("<", "&lt;")
        out.append(f'<text x="{left - 6}" y="{y + 13}" text-anchor="end">{escaped[:70]}</text>')
        out.append(f'<rect x="{left}" y="{y}" width="{ratio * scale:.1f}" height="{bar}" fill="{color}"/>')
        out.append(f'<text x="{left + ratio * scale + 4:.1f}" y="{y + 13}">{ratio:.2f}×</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out))


def machine():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    swift = subprocess.run(["swift", "--version"], capture_output=True, text=True).stdout.splitlines()
    return (f"{os.cpu_count()} × {model}, {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') // (1 << 30)} GiB, "
            f"Linux {platform.release()}, {swift[0] if swift else 'swift ?'}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--bulk-mb", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10, help="handshake load duration per server")
    parser.add_argument("--concurrency", type=int, default=16, help="QUIC handshakes in flight in the handshake load")
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--flood", type=int, default=2000, help="connections in the flood whose memory must come back")
    parser.add_argument("--flood-wait", type=int, default=60, help="seconds after the flood closed before RSS is read")
    parser.add_argument("--latency-count", type=int, default=5000)
    parser.add_argument("--valgrind-mb", type=int, default=8)
    parser.add_argument("--lossy-rate-mbit", type=float, default=100, help="the lossy path's bottleneck rate")
    parser.add_argument("--lossy-mb", type=int, default=5, help="the lossy path's download with CUBIC (about 15 s at Mathis' rate)")
    parser.add_argument("--lossy-bbr-mb", type=int, default=100, help="the lossy path's download with BBR")
    parser.add_argument("--no-build", action="store_true")
    parser.add_argument("--only", default="", help="comma-separated sections to run: bulk,tls,handshakes,dtls,sctp,latency,memory,flood,"
                        "efficiency, and lossy, which only runs when named (about 3 minutes with 3 runs)")
    parser.add_argument("--write-docs", action="store_true", help="write docs/PERFORMANCE.md and docs/performance.svg")
    args = parser.parse_args()
    if args.only and args.write_docs:
        sys.exit("--write-docs needs every section: drop --only")
    if args.quick:
        args.bulk_mb, args.runs, args.seconds, args.connections, args.latency_count, args.valgrind_mb = 20, 1, 3, 500, 500, 2
        args.flood, args.flood_wait = 500, 5
        args.lossy_mb, args.lossy_bbr_mb = 2, 20
    for tool in ("gtlsclient", "gtlsserver", "openssl"):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found (apt-get install ngtcp2-client ngtcp2-server openssl)")
    if not args.no_build:
        log("building (release)…")
        subprocess.run(["swift", "build", "-c", "release", "--product", "quiver"], cwd=ROOT, check=True)
        subprocess.run(["swift", "build", "-c", "release", "--product", "quiver-bench"], cwd=os.path.join(ROOT, "Benchmarks"), check=True)
        subprocess.run(["swift", "build", "-c", "release", "--product", "boring-dtls-server"], cwd=os.path.join(ROOT, "Benchmarks"), check=True)
    work = tempfile.mkdtemp(prefix="quiver-bench-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    try:
        subprocess.run([QUIVER, "cert", "--out", work], check=True, capture_output=True)
        cert, key = os.path.join(work, "cert.pem"), os.path.join(work, "key.pem")
        sections = [
            ("bulk", lambda: quic_bulk(work, cert, key, args.bulk_mb, args.runs)),
            ("tls", lambda: tls_bulk(work, cert, key, args.bulk_mb, args.runs)),
            ("handshakes", lambda: handshakes(work, cert, key, args.seconds, args.concurrency)),
            ("dtls", lambda: dtls(cert, key, args.seconds, 100_000)),
            ("sctp", lambda: sctp(20_000 if args.quick else 200_000, args.runs)),
            ("latency", lambda: latency(work, cert, key, args.latency_count)),
            ("memory", lambda: memory(work, cert, key, args.connections)),
            ("flood", lambda: flood_memory(work, cert, key, args.flood, args.flood_wait)),
            ("efficiency", lambda: efficiency(work, cert, key, max(1, args.bulk_mb // 4), args.valgrind_mb)),
            ("lossy", lambda: lossy(work, cert, key, args.runs, args.lossy_rate_mbit, args.lossy_mb, args.lossy_bbr_mb)),
        ]
        opt_in = {"lossy"}  # too long for the default set: named in --only or not run
        chosen = set(filter(None, args.only.split(",")))
        if unknown := chosen - {name for name, _ in sections}:
            sys.exit(f"unknown sections: {', '.join(sorted(unknown))}")
        for name, section in sections:
            if name in chosen or not chosen and name not in opt_in:
                section()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    table = markdown()
    print(table)
    chart = os.path.join(ROOT, "docs", "performance.svg") if args.write_docs else os.path.join(tempfile.gettempdir(), "quiver-performance.svg")
    svg(chart)
    log(f"chart: {chart}")
    if args.write_docs:
        # The hand-written analysis (from its heading on) survives a regeneration.
        path = os.path.join(ROOT, "docs", "PERFORMANCE.md")
        analysis = ""
        if os.path.exists(path):
            with open(path) as f:
                text = f.read()
            if ANALYSIS_HEADING in text:
                analysis = "\n" + text[text.index(ANALYSIS_HEADING):]
        with open(path, "w") as f:
            f.write("# Performance\n\n")
            f.write("Generated by `python3 Benchmarks/run.py --write-docs` (see its header for the method); every figure is "
                    "measured against a peer in the same run and the ratio is the result.\n\n")
            f.write(f"Machine: {machine()}. Run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
                    f"bulk {args.bulk_mb} MB × {args.runs} runs (median), handshake load {args.seconds} s with {args.concurrency} in flight, "
                    f"{args.connections} idle connections.\n\n")
            f.write(table + "\n\n![Quiver vs peer](performance.svg)\n" + analysis)


if __name__ == "__main__":
    main()
