#if canImport(Glibc)
import Glibc
#endif
import QuiverCore
import QuiverUDP
import Testing

/// Linux reports an ICMP port unreachable on an unconnected UDP socket only when `IP_RECVERR` is
/// set — `UDPSocket` always sets it — and on a connected socket in any case. Either way the
/// error comes back from the next send or receive call (whichever comes first) and sits in the
/// socket's error queue with the peer's address: `UDPSocket` moves it to `peerErrors`.
@Suite("UDPSocket: per-peer and per-datagram errors are not fatal")
struct UDPErrorTests {
    @Test("A closed port: ECONNREFUSED reported for that peer by receive; the socket keeps working",
          arguments: [false, true])
    func connectionRefusedOnReceive(connected: Bool) throws {
        let socket = try UDPSocket(host: "127.0.0.1", port: 0)
        let peer = try UDPSocket(host: "127.0.0.1", port: 0)
        let closed = try closedPort("127.0.0.1")
        if connected { try socket.connect(to: closed) }

        socket.enqueue([1], to: closed)
        #expect(try flushAll(socket).sent == 1)
        #expect(try socket.waitReadable(timeout: .seconds(5)), "POLLERR signals the error report")
        #expect(try socket.receive() == 0)
        #expect(socket.peerErrors.map(\.peer) == [closed])
        #expect(socket.peerErrors.first?.error.code == .connectionRefused)
        #expect(socket.peerErrors.first?.error.errno == ECONNREFUSED)
        socket.removeAllPeerErrors()
        #expect(try socket.waitReadable(timeout: .zero) == false, "the error queue is drained")

        // Still working: send and receive with another peer (unless connected elsewhere).
        guard !connected else { return }
        socket.enqueue([2], to: peer.localAddress)
        #expect(try flushAll(socket).sent == 1)
        #expect(try receive(1, on: peer).map(\.bytes) == [[2]])
        peer.enqueue([3], to: socket.localAddress)
        _ = try flushAll(peer)
        #expect(try receive(1, on: socket).map(\.bytes) == [[3]])
    }

    @Test("A pending ECONNREFUSED does not cost the next datagram to another peer")
    func connectionRefusedOnSend() throws {
        let socket = try UDPSocket(host: "127.0.0.1", port: 0)
        let peer = try UDPSocket(host: "127.0.0.1", port: 0)
        let closed = try closedPort("127.0.0.1")

        socket.enqueue([1], to: closed)
        _ = try flushAll(socket)
        #expect(try socket.waitReadable(timeout: .seconds(5)))  // the ICMP error has arrived
        socket.enqueue([2], to: peer.localAddress)
        // Linux returns the pending error from this send without sending it; flush retries.
        #expect(try flushAll(socket) == UDPSendResult(sent: 1, failed: 0, remaining: 0))
        #expect(socket.sendFailures.isEmpty)
        #expect(socket.peerErrors.map(\.peer) == [closed])
        #expect(try receive(1, on: peer).map(\.bytes) == [[2]])
    }

    @Test("A closed port inside a batch: the rest of the batch is sent and the error reported")
    func connectionRefusedWithinBatch() throws {
        let socket = try UDPSocket(host: "127.0.0.1", port: 0)
        let peer = try UDPSocket(host: "127.0.0.1", port: 0)
        let closed = try closedPort("127.0.0.1")
        socket.enqueue([1], to: closed)
        for i in 2...5 { socket.enqueue([UInt8(i)], to: peer.localAddress) }
        #expect(try flushAll(socket) == UDPSendResult(sent: 5, failed: 0, remaining: 0))
        #expect(try receive(4, on: peer).map(\.bytes) == [[2], [3], [4], [5]])
        // The ICMP error may arrive during the batch or after it; either way it is reported once
        // and leaves no POLLERR behind.
        if socket.peerErrors.isEmpty {
            #expect(try socket.waitReadable(timeout: .seconds(5)))
            #expect(try socket.receive() == 0)
        }
        #expect(socket.peerErrors.map(\.peer) == [closed])
        #expect(try socket.waitReadable(timeout: .zero) == false)
    }

    @Test("IPv6: ECONNREFUSED from a closed port", .enabled(if: Kernel.hasIPv6, "no IPv6 here"))
    func connectionRefusedIPv6() throws {
        let socket = try UDPSocket(host: "::1", port: 0)
        let closed = try closedPort("::1")
        socket.enqueue([1], to: closed)
        _ = try flushAll(socket)
        #expect(try socket.waitReadable(timeout: .seconds(5)))
        #expect(try socket.receive() == 0)
        #expect(socket.peerErrors.map(\.peer) == [closed])
        #expect(socket.peerErrors.first?.error.code == .connectionRefused)
    }

    @Test("Dual-stack: ECONNREFUSED from a closed IPv4 port names the IPv4 peer",
          .enabled(if: Kernel.hasIPv6, "no IPv6 here"))
    func connectionRefusedDualStack() throws {
        let socket = try UDPSocket(host: "::", port: 0)
        let closed = try closedPort("127.0.0.1")
        socket.enqueue([1], to: closed)
        _ = try flushAll(socket)
        #expect(try socket.waitReadable(timeout: .seconds(5)))
        #expect(try socket.receive() == 0)
        #expect(socket.peerErrors.map(\.peer) == [closed])
        #expect(socket.peerErrors.first?.error.code == .connectionRefused)
    }

    @Test("EMSGSIZE drops that datagram only; the rest of the batch is sent")
    func messageTooLarge() throws {
        let a = try UDPSocket(host: "127.0.0.1", port: 0)
        let b = try UDPSocket(host: "127.0.0.1", port: 0)
        a.enqueue([1], to: b.localAddress)
        a.enqueue([UInt8](repeating: 0, count: 65_508), to: b.localAddress)  // over IPv4's 65507
        a.enqueue([3], to: b.localAddress)
        #expect(try a.flush() == UDPSendResult(sent: 2, failed: 1, remaining: 0))
        #expect(a.sendFailures.count == 1)
        #expect(a.sendFailures.first?.error.code == .messageTooLarge)
        #expect(a.sendFailures.first?.destination == b.localAddress)
        #expect(try receive(2, on: b).map(\.bytes) == [[1], [3]])
        #expect(try a.flush() == UDPSendResult(sent: 0, failed: 0, remaining: 0))
        #expect(a.sendFailures.isEmpty, "cleared by the next flush")
    }

    @Test("An IPv6 destination on an IPv4 socket fails for that datagram only")
    func wrongFamily() throws {
        let a = try UDPSocket(host: "127.0.0.1", port: 0)
        let b = try UDPSocket(host: "127.0.0.1", port: 0)
        a.enqueue([1], to: try address("[::1]:9"))
        a.enqueue([2], to: b.localAddress)
        #expect(try a.flush() == UDPSendResult(sent: 1, failed: 1, remaining: 0))
        #expect(a.sendFailures.first?.error.errno == EAFNOSUPPORT)
        #expect(try receive(1, on: b).map(\.bytes) == [[2]])
    }
}
