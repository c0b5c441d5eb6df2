// The SCTP ends of Benchmarks/run.py: Quiver's sans-I/O SCTPEndpoint over a QuiverUDP socket
// (UDP encapsulation, RFC 6951), in the place of usrsctp's `tsctp` sink or sender.
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import QuiverCore
import QuiverSCTP
import QuiverUDP

/// An SCTPEndpoint on a loopback UDP socket, driven by hand: one ``round(until:)`` sends what
/// is due, waits for a datagram or a timer, and takes in what arrived.
private struct SCTPLoop {
    let socket: UDPSocket
    let endpoint: SCTPEndpoint
    let deadline: Instant
    let name: String

    init(_ name: String, udpPort: UInt16, configuration: SCTPEndpoint.Configuration, timeout: Double) {
        do {
            socket = try UDPSocket(bindingTo: SocketAddress(host: "127.0.0.1", port: udpPort)!,
                                   configuration: UDPSocket.Configuration(gso: false, ecn: false, receiveBufferSize: 8 << 20, sendBufferSize: 8 << 20))
        } catch {
            fail("\(name): \(error)")
        }
        endpoint = SCTPEndpoint(configuration: configuration)
        deadline = Instant.now() + .milliseconds(Int64(timeout * 1000))
        self.name = name
    }

    /// Sends, waits (at most 20 ms), receives. Exits the process once the deadline passed.
    func round(_ progress: @autoclosure () -> String) {
        let now = Instant.now()
        if now >= deadline { fail("\(name): not done in time (\(progress()))") }
        endpoint.handleTimeout(now: now)
        flush(now: now)
        var wait = deadline - now
        if let next = endpoint.nextDeadline { wait = min(wait, next - now) }
        guard (try? socket.waitReadable(timeout: max(.zero, min(wait, .milliseconds(20))))) == true,
              let count = try? socket.receive() else { return }
        let received = Instant.now()
        for index in 0..<count {
            endpoint.receive(socket.withReceivedBytes(index) { Array($0) }, from: socket.received(index).source, now: received)
        }
    }

    /// Sends every datagram the endpoint has now.
    func flush(now: Instant) {
        while let (datagram, destination) = endpoint.nextDatagram(now: now) {
            if !socket.enqueue(datagram, to: destination) {
                _ = try? socket.flush()
                socket.enqueue(datagram, to: destination)
            }
        }
        _ = try? socket.flush()
    }

    /// The line run.py reads: seconds since `start`, bytes, messages, the process's CPU seconds.
    func report(since start: Instant?, bytes: Int, messages: Int, association: SCTPAssociation?) {
        let seconds = start.map { Double((Instant.now() - $0).nanosecondsClamped) / 1e9 } ?? 0
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let cpu = Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
        say("RESULT seconds=\(seconds) bytes=\(bytes) messages=\(messages) cpu=\(cpu) closed=\(association?.closeReason.map { "\($0)" } ?? "?")")
    }
}

/// Accepts one association on SCTP `sctpPort` over UDP `udpPort`, reads every message until the
/// peer's SHUTDOWN, and prints `seconds=… bytes=… messages=… cpu=…` (from the first message to
/// the end). Exits non-zero if it is not done within `timeout` seconds.
func runSCTPSink(udpPort: UInt16, sctpPort: UInt16, timeout: Double) {
    var configuration = SCTPEndpoint.Configuration(port: sctpPort)
    configuration.association.receiveBufferSize = 1 << 20
    let loop = SCTPLoop("sctp-sink", udpPort: udpPort, configuration: configuration, timeout: timeout)
    say("sctp-sink listening on UDP \(udpPort), SCTP port \(sctpPort)")
    var association: SCTPAssociation?
    var first: Instant?
    var bytes = 0
    var messages = 0
    while association?.state != .closed {
        loop.round("\(messages) messages")
        association = association ?? loop.endpoint.accept()
        while let message = association?.read() {
            if first == nil { first = .now() }
            bytes += message.bytes.count
            messages += 1
        }
    }
    loop.flush(now: .now())  // the SHUTDOWN COMPLETE
    loop.report(since: first, bytes: bytes, messages: messages, association: association)
}

/// Sends `messages` messages of `size` bytes on one association to SCTP port 5001 over UDP
/// `remotePort` (tsctp's sink), then the SHUTDOWN; prints `seconds=… bytes=… cpu=…` from the
/// establishment to the end of the SHUTDOWN — Quiver's SCTPEndpoint in the place of tsctp's
/// sender.
func runSCTPSource(remotePort: UInt16, messages: Int, size: Int, timeout: Double) {
    var configuration = SCTPEndpoint.Configuration(port: 5002)
    configuration.acceptsAssociations = false
    let loop = SCTPLoop("sctp-source", udpPort: 0, configuration: configuration, timeout: timeout)
    let sink = SocketAddress(host: "127.0.0.1", port: remotePort)!
    let message = [UInt8](repeating: 0x5A, count: size)
    var association = loop.endpoint.connect(to: sink, port: 5001, now: .now())
    var sent = 0
    var started: Instant?
    while association.state != .closed || started == nil {
        if association.state == .closed {
            // tsctp's sink aborts an INIT that comes before its socket listens: start again
            // (until the deadline).
            association = loop.endpoint.connect(to: sink, port: 5001, now: .now())
        }
        if association.state == .established {
            if started == nil { started = .now() }
            while sent < messages, association.writableBytes >= size {
                try? association.send(message, stream: 0)
                sent += 1
            }
            if sent == messages, association.isIdle { association.shutdown(now: .now()) }
        }
        loop.round("\(sent) messages")
    }
    loop.report(since: started, bytes: sent * size, messages: sent, association: association)
}
