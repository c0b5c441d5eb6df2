// The SCTP sink of Benchmarks/run.py: Quiver's sans-I/O SCTPEndpoint over a QuiverUDP socket
// (UDP encapsulation, RFC 6951), receiving from usrsctp's `tsctp` as tsctp's own sink does.
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import QuiverCore
import QuiverSCTP
import QuiverUDP

/// Accepts one association on SCTP `sctpPort` over UDP `udpPort`, reads every message until the
/// peer's SHUTDOWN, and prints `seconds=… bytes=… messages=…` (from the first message to the
/// end). Exits non-zero if nothing arrives within `timeout` seconds.
func runSCTPSink(udpPort: UInt16, sctpPort: UInt16, timeout: Double) {
    let socket: UDPSocket
    do {
        socket = try UDPSocket(bindingTo: SocketAddress(host: "127.0.0.1", port: udpPort)!,
                               configuration: UDPSocket.Configuration(gso: false, ecn: false, receiveBufferSize: 8 << 20, sendBufferSize: 8 << 20))
    } catch {
        fail("sctp-sink: \(error)")
    }
    var configuration = SCTPEndpoint.Configuration(port: sctpPort)
    configuration.association.receiveBufferSize = 1 << 20
    let endpoint = SCTPEndpoint(configuration: configuration)
    say("sctp-sink listening on UDP \(udpPort), SCTP port \(sctpPort)")
    var association: SCTPAssociation?
    var first: Instant?
    var bytes = 0
    var messages = 0
    let deadline = Instant.now() + .milliseconds(Int64(timeout * 1000))
    while association?.state != .closed {
        let now = Instant.now()
        if now >= deadline { fail("sctp-sink: not done after \(timeout) s (\(messages) messages)") }
        endpoint.handleTimeout(now: now)
        while let (datagram, destination) = endpoint.nextDatagram(now: now) {
            if !socket.enqueue(datagram, to: destination) {
                _ = try? socket.flush()
                socket.enqueue(datagram, to: destination)
            }
        }
        _ = try? socket.flush()
        var wait = deadline - now
        if let next = endpoint.nextDeadline { wait = min(wait, next - now) }
        guard (try? socket.waitReadable(timeout: max(.zero, min(wait, .milliseconds(50))))) == true,
              let count = try? socket.receive() else { continue }
        let received = Instant.now()
        for index in 0..<count {
            endpoint.receive(socket.withReceivedBytes(index) { Array($0) }, from: socket.received(index).source, now: received)
        }
        association = association ?? endpoint.accept()
        while let message = association?.read() {
            if first == nil { first = received }
            bytes += message.bytes.count
            messages += 1
        }
    }
    // The SHUTDOWN COMPLETE.
    while let (datagram, destination) = endpoint.nextDatagram(now: .now()) { socket.enqueue(datagram, to: destination) }
    _ = try? socket.flush()
    let seconds = first.map { Double((Instant.now() - $0).nanosecondsClamped) / 1e9 } ?? 0
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    let cpu = Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    say("RESULT seconds=\(seconds) bytes=\(bytes) messages=\(messages) cpu=\(cpu) closed=\(association?.closeReason.map { "\($0)" } ?? "?")")
}

/// Sends `messages` messages of `size` bytes on one association to SCTP port 5001 over UDP
/// `remotePort` (tsctp's sink), then the SHUTDOWN; prints `seconds=… bytes=… cpu=…` from the
/// first message to the end of the SHUTDOWN — Quiver's SCTPEndpoint in the place of tsctp's
/// sender.
func runSCTPSource(remotePort: UInt16, messages: Int, size: Int, timeout: Double) {
    let socket: UDPSocket
    do {
        socket = try UDPSocket(bindingTo: SocketAddress(host: "127.0.0.1", port: 0)!,
                               configuration: UDPSocket.Configuration(gso: false, ecn: false, receiveBufferSize: 8 << 20, sendBufferSize: 8 << 20))
    } catch {
        fail("sctp-source: \(error)")
    }
    var configuration = SCTPEndpoint.Configuration(port: 5002)
    configuration.acceptsAssociations = false
    let endpoint = SCTPEndpoint(configuration: configuration)
    let deadline = Instant.now() + .milliseconds(Int64(timeout * 1000))
    let message = [UInt8](repeating: 0x5A, count: size)
    var association: SCTPAssociation?
    var sent = 0
    var started: Instant?
    var attempts = 0
    while association?.state != .closed || association?.closeReason.map({ if case .abortedByPeer = $0 { true } else { false } }) == true {
        let now = Instant.now()
        if now >= deadline { fail("sctp-source: not done after \(timeout) s (\(sent) messages)") }
        if association == nil || association?.state == .closed {
            // tsctp's sink aborts an INIT that comes before its socket listens: start again.
            attempts += 1
            if attempts > 50 { fail("sctp-source: no association") }
            association = endpoint.connect(to: SocketAddress(host: "127.0.0.1", port: remotePort)!, port: 5001, now: now)
        }
        guard let current = association else { continue }
        if current.state == .established {
            if started == nil { started = now }
            while sent < messages, current.writableBytes >= size {
                try? current.send(message, stream: 0)
                sent += 1
            }
            if sent == messages, current.isIdle { current.shutdown(now: now) }
        }
        endpoint.handleTimeout(now: now)
        while let (datagram, destination) = endpoint.nextDatagram(now: now) {
            if !socket.enqueue(datagram, to: destination) {
                _ = try? socket.flush()
                socket.enqueue(datagram, to: destination)
            }
        }
        _ = try? socket.flush()
        var wait = deadline - now
        if let next = endpoint.nextDeadline { wait = min(wait, next - now) }
        guard (try? socket.waitReadable(timeout: max(.zero, min(wait, .milliseconds(20))))) == true,
              let count = try? socket.receive() else { continue }
        let received = Instant.now()
        for index in 0..<count {
            endpoint.receive(socket.withReceivedBytes(index) { Array($0) }, from: socket.received(index).source, now: received)
        }
    }
    let seconds = started.map { Double((Instant.now() - $0).nanosecondsClamped) / 1e9 } ?? 0
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    let cpu = Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    say("RESULT seconds=\(seconds) bytes=\(sent * size) messages=\(sent) cpu=\(cpu) closed=\(association?.closeReason.map { "\($0)" } ?? "?")")
}
