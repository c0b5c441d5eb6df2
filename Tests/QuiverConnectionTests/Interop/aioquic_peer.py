#!/usr/bin/env python3
"""aioquic peer for Quiver's QUIC interop tests (AioquicInteropTests.swift).

Raw QUIC streams, ALPN "echo", 127.0.0.1 only.

server: echoes every bidirectional stream and ends it when the peer ends it. Prints
    READY <port>                                   once bound (port 0 picks a free port)
    CONNECTION version=<hex> cipher=<name> alpn=<alpn>   when a handshake completes
    STREAM id=<id> bytes=<n>                       when a stream has been echoed and ended
    CLOSED error_code=<n> frame_type=<t> reason=<text>   when a connection ends
  and runs until it is killed, its stdin is closed (its parent died) or --timeout passes.

client: opens one bidirectional stream per size, sends that many random bytes, ends the
  stream, and checks that the echo is the same bytes followed by the end of the stream.
  Prints one summary line and exits 0 only if every stream matched:
    RESULT PASS streams=<n> bytes=<n> version=<hex> cipher=<name> alpn=<alpn>
    RESULT FAIL <what went wrong>

Logs (aioquic's own, INFO or --debug) go to stderr; --qlog DIR writes qlog traces.
"""

import argparse
import asyncio
import logging
import os
import ssl
import sys

from aioquic.asyncio import QuicConnectionProtocol, connect, serve
from aioquic.quic import events
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.logger import QuicFileLogger
from aioquic.quic.packet import QuicProtocolVersion
from aioquic.tls import CipherSuite

ALPN = "echo"


def say(line: str) -> None:
    print(line, flush=True)


def configure(args: argparse.Namespace, is_client: bool) -> QuicConfiguration:
    configuration = QuicConfiguration(is_client=is_client, alpn_protocols=[ALPN], idle_timeout=10.0)
    if args.chacha20:
        configuration.cipher_suites = [CipherSuite.CHACHA20_POLY1305_SHA256]
    if args.v2:
        # QUIC v2 preferred. A client still sends its first flight in v1 and lists v2 in its
        # version_information, so that the server switches by compatible version negotiation
        # (RFC 9368 section 2.3, RFC 9369 section 4).
        configuration.supported_versions = [QuicProtocolVersion.VERSION_2, QuicProtocolVersion.VERSION_1]
        if is_client:
            configuration.original_version = QuicProtocolVersion.VERSION_1
    else:
        configuration.supported_versions = [QuicProtocolVersion.VERSION_1]
    if args.qlog:
        configuration.quic_logger = QuicFileLogger(args.qlog)
    return configuration


def describe(quic) -> str:
    """Version, cipher suite and ALPN of an established connection (aioquic internals)."""
    schedule = quic.tls.key_schedule
    cipher = schedule.cipher_suite.name if schedule is not None else "none"
    return f"version=0x{quic._version:08x} cipher={cipher} alpn={quic.tls.alpn_negotiated}"


# MARK: - Server


class EchoServerProtocol(QuicConnectionProtocol):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._echoed: dict[int, int] = {}

    def quic_event_received(self, event: events.QuicEvent) -> None:
        if isinstance(event, events.HandshakeCompleted):
            say(f"CONNECTION {describe(self._quic)}")
        elif isinstance(event, events.StreamDataReceived):
            if event.stream_id & 2:  # unidirectional: nothing to echo on
                return
            # The protocol transmits after every batch of events.
            self._quic.send_stream_data(event.stream_id, event.data, end_stream=event.end_stream)
            self._echoed[event.stream_id] = self._echoed.get(event.stream_id, 0) + len(event.data)
            if event.end_stream:
                say(f"STREAM id={event.stream_id} bytes={self._echoed[event.stream_id]}")
        elif isinstance(event, events.StreamReset):
            say(f"STREAM id={event.stream_id} reset error_code={event.error_code}")
        elif isinstance(event, events.ConnectionTerminated):
            say(f"CLOSED error_code={event.error_code} frame_type={event.frame_type} reason={event.reason_phrase}")


async def run_server(args: argparse.Namespace) -> int:
    configuration = configure(args, is_client=False)
    configuration.load_cert_chain(args.cert, args.key)
    server = await serve("127.0.0.1", args.port, configuration=configuration, create_protocol=EchoServerProtocol)
    # serve() does not return the socket: the bound port is on the server's datagram transport.
    port = server._transport.get_extra_info("sockname")[1]
    say(f"READY {port}")
    # Until killed, or until stdin closes: a parent that died without killing us.
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    await stdin.read()
    server.close()
    return 0


# MARK: - Client


class EchoClientProtocol(QuicConnectionProtocol):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._received: dict[int, bytearray] = {}
        self._finished: dict[int, asyncio.Future] = {}
        self.close_event: events.ConnectionTerminated | None = None
        # --migrate-after: once this many echoed bytes arrived, move to a new local port.
        self.migrate_after: int | None = None
        self.migrated: asyncio.Task | None = None

    async def migrate(self) -> int:
        """Moves to a new UDP socket on the same address (a new port) and a new connection ID
        of the server's (active migration, RFC 9000 §9.2); aioquic sends no PATH_CHALLENGE, the
        server validates the new path. The old socket stays open (a straggler is still taken)."""
        host = self._transport.get_extra_info("sockname")[0]
        transport, _ = await self._loop.create_datagram_endpoint(lambda: self, local_addr=(host, 0))
        self.change_connection_id()  # also transmits, through the new transport
        return transport.get_extra_info("sockname")[1]

    async def echo(self, payload: bytes) -> bytes:
        """Sends `payload` on a new stream, ends it, and returns everything echoed until FIN."""
        stream_id = self._quic.get_next_available_stream_id()
        self._received[stream_id] = bytearray()
        self._finished[stream_id] = self._loop.create_future()
        self._quic.send_stream_data(stream_id, payload, end_stream=True)
        self.transmit()
        await self._finished[stream_id]
        return bytes(self._received[stream_id])

    def quic_event_received(self, event: events.QuicEvent) -> None:
        if isinstance(event, events.StreamDataReceived) and event.stream_id in self._received:
            self._received[event.stream_id] += event.data
            if self.migrate_after is not None and self.migrated is None \
                    and sum(map(len, self._received.values())) >= self.migrate_after:
                self.migrated = self._loop.create_task(self.migrate())
            if event.end_stream and not self._finished[event.stream_id].done():
                self._finished[event.stream_id].set_result(None)
        elif isinstance(event, events.StreamReset) and event.stream_id in self._finished:
            future = self._finished[event.stream_id]
            if not future.done():
                future.set_exception(ConnectionError(f"stream {event.stream_id} reset with {event.error_code}"))
        elif isinstance(event, events.ConnectionTerminated):
            self.close_event = event
            for future in self._finished.values():
                if not future.done():
                    future.set_exception(ConnectionError(f"connection closed: {event.error_code} {event.reason_phrase}"))


async def run_client(args: argparse.Namespace) -> int:
    configuration = configure(args, is_client=True)
    configuration.server_name = "localhost"
    if args.insecure:
        configuration.verify_mode = ssl.CERT_NONE
    elif args.ca:
        configuration.load_verify_locations(cafile=args.ca)
    payloads = [os.urandom(size) for size in args.sizes]
    try:
        async with connect("127.0.0.1", args.port, configuration=configuration,
                           create_protocol=EchoClientProtocol) as client:
            summary = describe(client._quic)
            client.migrate_after = args.migrate_after
            echoes = await asyncio.gather(*(client.echo(payload) for payload in payloads))
            if client.migrated is not None:
                summary += f" migrated-to-port={await client.migrated}"
    except Exception as error:  # the summary line must say what failed, whatever it was
        say(f"RESULT FAIL {type(error).__name__}: {error}")
        return 1
    failures = [
        f"stream {index}: sent {len(sent)} bytes, echo {len(echo)} bytes"
        + ("" if len(sent) != len(echo) else " (content differs)")
        for index, (sent, echo) in enumerate(zip(payloads, echoes))
        if sent != echo
    ]
    if failures:
        say(f"RESULT FAIL {'; '.join(failures)} {summary}")
        return 1
    say(f"RESULT PASS streams={len(payloads)} bytes={sum(map(len, payloads))} {summary}")
    return 0


# MARK: - Main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)
    for name in ("server", "client"):
        mode = sub.add_parser(name)
        mode.add_argument("--port", type=int, required=True)
        mode.add_argument("--chacha20", action="store_true", help="offer/accept only TLS_CHACHA20_POLY1305_SHA256")
        mode.add_argument("--v2", action="store_true", help="prefer QUIC v2 (RFC 9369)")
        mode.add_argument("--timeout", type=float, default=20.0 if name == "client" else 120.0,
                          help="overall limit in seconds")
        mode.add_argument("--debug", action="store_true", help="aioquic DEBUG logs on stderr")
        mode.add_argument("--qlog", metavar="DIR", help="write qlog traces into DIR")
        if name == "server":
            mode.add_argument("--cert", required=True)
            mode.add_argument("--key", required=True)
        else:
            mode.add_argument("--sizes", type=int, nargs="+", default=[0, 1024, 1 << 20])
            mode.add_argument("--ca", help="trust this certificate (PEM)")
            mode.add_argument("--insecure", action="store_true", help="do not verify the server's certificate")
            mode.add_argument("--migrate-after", type=int, metavar="BYTES",
                              help="move to a new local port and connection ID once BYTES were echoed")
    args = parser.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    run = run_server if args.mode == "server" else run_client
    try:
        return asyncio.run(asyncio.wait_for(run(args), args.timeout))
    except asyncio.TimeoutError:
        say(f"{'RESULT FAIL' if args.mode == 'client' else 'EXIT'} timeout after {args.timeout} s")
        return 1


if __name__ == "__main__":
    sys.exit(main())
