#!/usr/bin/env python3
"""One HTTP/3 request with aioquic, for the Hummingbird example's test.

usage: aioquic_h3_request.py PORT METHOD PATH [--body-size N]

Connects to 127.0.0.1:PORT (SNI localhost, certificate not verified), sends METHOD PATH with a
body of N bytes (byte i = i % 251) when --body-size is given, and prints
    STATUS <code>
    HEADER <name>: <value>       for each response header
    BODY <length> <sha256 hex>   of the response body
    SENT <sha256 hex>            of the request body sent (empty body: of b"")
then closes with H3_NO_ERROR and exits 0; on a failure it prints FAIL <what> and exits 1.
"""

import argparse
import asyncio
import hashlib
import ssl
import sys

from aioquic.asyncio import QuicConnectionProtocol, connect
from aioquic.h3 import events as h3_events
from aioquic.h3.connection import H3Connection
from aioquic.quic import events
from aioquic.quic.configuration import QuicConfiguration

H3_NO_ERROR = 0x100


class Client(QuicConnectionProtocol):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.h3 = H3Connection(self._quic)
        self.done = asyncio.get_running_loop().create_future()
        self.status = None
        self.headers = []
        self.body = bytearray()

    def request(self, method, path, body):
        stream = self._quic.get_next_available_stream_id()
        self.h3.send_headers(stream, [(b":method", method.encode()), (b":scheme", b"https"),
                                      (b":authority", b"localhost"), (b":path", path.encode())], end_stream=not body)
        if body:
            self.h3.send_data(stream, body, end_stream=True)
        self.transmit()

    def quic_event_received(self, event):
        if isinstance(event, events.ConnectionTerminated) and not self.done.done():
            self.done.set_exception(RuntimeError(f"connection closed: {event.error_code} {event.reason_phrase}"))
        for h3_event in self.h3.handle_event(event):
            if isinstance(h3_event, h3_events.HeadersReceived):
                for name, value in h3_event.headers:
                    if name == b":status":
                        self.status = int(value)
                    else:
                        self.headers.append((name.decode(), value.decode()))
            elif isinstance(h3_event, h3_events.DataReceived):
                self.body += h3_event.data
            if getattr(h3_event, "stream_ended", False) and not self.done.done():
                self.done.set_result(None)


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("method")
    parser.add_argument("path")
    parser.add_argument("--body-size", type=int, default=0)
    args = parser.parse_args()
    body = bytes(i % 251 for i in range(args.body_size))
    configuration = QuicConfiguration(is_client=True, alpn_protocols=["h3"], server_name="localhost")
    configuration.verify_mode = ssl.CERT_NONE
    async with connect("127.0.0.1", args.port, configuration=configuration, create_protocol=Client) as client:
        client.request(args.method, args.path, body)
        await asyncio.wait_for(client.done, 20)
        print(f"STATUS {client.status}")
        for name, value in client.headers:
            print(f"HEADER {name}: {value}")
        print(f"BODY {len(client.body)} {hashlib.sha256(client.body).hexdigest()}")
        print(f"SENT {hashlib.sha256(body).hexdigest()}")
        client.close(error_code=H3_NO_ERROR)


try:
    asyncio.run(main())
except Exception as error:  # noqa: BLE001 - any failure is reported as one line
    print(f"FAIL {error!r}")
    sys.exit(1)
