import QuiverCore
import QuiverSCTP
import QuiverUDP

/// Runs an ``SCTPEndpoint`` over a real UDP socket on 127.0.0.1 (UDP encapsulation, RFC 6951,
/// or SCTP as plain UDP payloads: the same bytes either way), for the interop tests.
final class UDPEndpointDriver {
    let socket: UDPSocket
    let endpoint: SCTPEndpoint

    init(sctpPort: UInt16, udpPort: UInt16 = 0, configure: (inout SCTPEndpoint.Configuration) -> Void = { _ in }) throws {
        socket = try UDPSocket(
            bindingTo: SocketAddress(host: "127.0.0.1", port: udpPort)!,
            configuration: UDPSocket.Configuration(gso: false, ecn: false, receiveBufferSize: 4 << 20, sendBufferSize: 4 << 20))
        var configuration = SCTPEndpoint.Configuration(port: sctpPort)
        configure(&configuration)
        endpoint = SCTPEndpoint(configuration: configuration)
    }

    var udpPort: UInt16 { socket.localAddress.port }

    /// Chunks lost on the way out (on every transmission): removed from their packet, which is
    /// resealed, or not sent when nothing is left.
    var losesChunk: ((SCTPChunk) -> Bool)?

    /// `bytes` without the chunks ``losesChunk`` takes; `nil` when none is left.
    private func surviving(_ bytes: [UInt8]) -> [UInt8]? {
        guard let losesChunk, var packet = try? SCTPPacket.parse(bytes), packet.chunks.contains(where: losesChunk) else { return bytes }
        packet.chunks.removeAll(where: losesChunk)
        return packet.chunks.isEmpty ? nil : packet.encoded()
    }

    struct Timeout: Error, CustomStringConvertible {
        var description: String
    }

    /// Connects to a peer that may not listen yet: an ABORT answering the INIT (usrsctp is up but
    /// its socket not yet listening) starts a new attempt, as the TLS interop tests retry a
    /// refused TCP connect, for at most `timeout`.
    func connect(to address: SocketAddress, port: UInt16, timeout: Duration = .seconds(10)) throws -> SCTPAssociation {
        let deadline = Instant.now() + timeout
        while true {
            let association = endpoint.connect(to: address, port: port, now: .now())
            try run(timeout: deadline - Instant.now(), "association with \(address) port \(port)") {
                association.state != .cookieWait && association.state != .cookieEchoed
            }
            if case .abortedByPeer = association.closeReason, Instant.now() < deadline { continue }
            return association
        }
    }

    /// Sends, receives and runs timers until `done` holds; throws after `timeout`.
    func run(timeout: Duration = .seconds(10), _ what: String, until done: () throws -> Bool) throws {
        let deadline = Instant.now() + timeout
        while try !done() {
            var now = Instant.now()
            guard now < deadline else { throw Timeout(description: "\(what): not done after \(timeout)") }
            endpoint.handleTimeout(now: now)
            while let (sent, destination) = endpoint.nextDatagram(now: now) {
                guard let bytes = surviving(sent) else { continue }
                if !socket.enqueue(bytes, to: destination) {
                    _ = try socket.flush()
                    socket.enqueue(bytes, to: destination)
                }
            }
            _ = try socket.flush()
            now = Instant.now()
            var wait = deadline - now
            if let next = endpoint.nextDeadline { wait = min(wait, next - now) }
            wait = max(.zero, min(wait, .milliseconds(20)))
            if try socket.waitReadable(timeout: wait) {
                let count = try socket.receive()
                let now = Instant.now()
                for index in 0..<count {
                    let bytes = socket.withReceivedBytes(index) { Array($0) }
                    endpoint.receive(bytes, from: socket.received(index).source, now: now)
                }
            }
        }
    }
}
