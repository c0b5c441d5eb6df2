// boring-dtls-server: the DTLS peer server of Benchmarks/run.py's DTLS 1.3 rows — BoringSSL (as
// vendored by swift-nio-ssl) serving DTLS echo, one client at a time.
//
//   boring-dtls-server PORT CERT KEY [1.2|1.3]
//
// BoringSSL has no DTLSv1_listen: the socket learns each client from its first datagram
// (MSG_PEEK, so BoringSSL still reads it), connects to it, runs the handshake and echoes every
// message until the client's close_notify (or an error, or 10 s of silence), then disconnects
// and waits for the next client. Prints "listening" once bound, and one line per client that
// failed. Sequential clients from one address and port (`quiver-bench dtls-load --same-port`)
// go straight to the next connection; a client from another address waits for the one before.
#if canImport(Glibc)
import Glibc
#endif
import CNIOBoringSSL

/// One line to standard output, unbuffered (run.py waits for "listening").
func say(_ line: String) {
    let bytes = Array((line + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
}

let arguments = CommandLine.arguments
guard arguments.count >= 4, let port = UInt16(arguments[1]) else {
    say("usage: boring-dtls-server PORT CERT KEY [1.2|1.3]")
    exit(2)
}
let version = arguments.count > 4 && arguments[4] == "1.2" ? UInt16(DTLS1_2_VERSION) : UInt16(DTLS1_3_VERSION)

func fail(_ what: String) -> Never {
    var text = [UInt8](repeating: 0, count: 256)
    text.withUnsafeMutableBufferPointer { buffer in
        buffer.withMemoryRebound(to: CChar.self) { _ = ERR_error_string_n(ERR_get_error(), $0.baseAddress, $0.count) }
    }
    say("error: \(what): \(String(decoding: text.prefix { $0 != 0 }, as: UTF8.self))")
    exit(1)
}

guard let context = SSL_CTX_new(DTLS_method()) else { fail("SSL_CTX_new") }
SSL_CTX_set_min_proto_version(context, version)
SSL_CTX_set_max_proto_version(context, version)
guard SSL_CTX_use_certificate_chain_file(context, arguments[2]) == 1,
      SSL_CTX_use_PrivateKey_file(context, arguments[3], SSL_FILETYPE_PEM) == 1
else { fail("certificate or key") }

let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
var address = sockaddr_in()
address.sin_family = sa_family_t(AF_INET)
address.sin_port = port.bigEndian
address.sin_addr.s_addr = inet_addr("127.0.0.1")
let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
guard bound == 0 else { fail("bind: \(errno)") }
_ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
say("listening on 127.0.0.1:\(port)")

/// Runs `operation` until it succeeds, fails, or `fd` stays silent for 10 s, firing DTLS timers.
func pump(_ ssl: OpaquePointer, _ operation: () -> Int32) -> Int32 {
    var silent = 0
    while true {
        let result = operation()
        if result > 0 { return result }
        guard SSL_get_error(ssl, result) == SSL_ERROR_WANT_READ else { return result }
        var timer = timeval()
        let milliseconds = DTLSv1_get_timeout(ssl, &timer) == 1 ? Int32(timer.tv_sec * 1000 + Int(timer.tv_usec) / 1000) : 1000
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        if poll(&poller, 1, milliseconds) == 0 {
            silent += Int(milliseconds)
            if silent >= 10_000 { return -1 }
            _ = DTLSv1_handle_timeout(ssl)
        } else {
            silent = 0
        }
    }
}

var buffer = [UInt8](repeating: 0, count: 16_384)
while true {
    // The next client: peek at its first datagram's source and connect the socket to it.
    var peer = sockaddr_in()
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
    _ = poll(&poller, 1, -1)
    let peeked = withUnsafeMutablePointer(to: &peer) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(fd, &buffer, 1, Int32(MSG_PEEK), $0, &length) }
    }
    guard peeked >= 0 else { continue }
    _ = withUnsafePointer(to: &peer) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, length) } }
    guard let ssl = SSL_new(context) else { fail("SSL_new") }
    SSL_set_fd(ssl, fd)
    SSL_set_accept_state(ssl)
    if pump(ssl, { SSL_do_handshake(ssl) }) == 1 {
        while true {
            let count = pump(ssl) { SSL_read(ssl, &buffer, Int32(buffer.count)) }
            if count <= 0 { break }
            _ = SSL_write(ssl, buffer, count)
        }
        _ = SSL_shutdown(ssl)
    } else {
        say("handshake failed")
        ERR_clear_error()
    }
    SSL_free(ssl)
    // Disconnect (AF_UNSPEC) for the next client.
    var unspecified = sockaddr()
    unspecified.sa_family = sa_family_t(AF_UNSPEC)
    _ = connect(fd, &unspecified, socklen_t(MemoryLayout<sockaddr>.size))
}
