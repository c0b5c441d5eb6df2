#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import Quiver
import QuiverCore
import QuiverTLSSocket
import QuiverUDP

/// `quiver serve --handover PATH`: restarting a server without dropping a connection
/// (docs/DEPLOYMENT.md, "Restarting without dropping connections"), for QUIC (`--quic`,
/// `--http3`), TLS over TCP (`--tls`) or both (the default).
///
/// QUIC: the first process makes a `UDPSocket.generationGroup`: twice `--loops` sockets in one
/// SO_REUSEPORT group, of which it serves the first half (generation 0), and listens on the
/// unix socket PATH. A new `quiver serve --handover PATH` finds it there and takes over: the
/// old process passes it all the sockets of the group (SCM_RIGHTS), the new one serves the
/// other half (generation 1, its connection IDs naming workers of that half) and replaces the
/// group's steering program so that new connections reach it, while every datagram of the old
/// process's connections — short headers, and long headers naming its workers — still reaches
/// the old process. The old process serves on until its connections ended (or `--drain-timeout`
/// passed), asks the new one to steer nothing more to it, serves what already arrived, and
/// exits. No socket of the group closes while a process serves it (each process holds all of
/// them), so the kernel never moves a socket to another index.
///
/// TLS over TCP: the listening sockets (one per loop) go over the same way; an accepted
/// connection is its own socket, which stays with the process that accepted it. Once the new
/// process said `ready` the old one stops accepting (`Listener.closeListeningSockets()`):
/// the sockets stay listening through the new process's descriptors, which accepts what the
/// kernel queued, so no connection attempt is refused or lost.
///
/// The unix socket carries one short text message at a time:
///
/// | from | message | meaning |
/// |---|---|---|
/// | new | `takeover LOOPS OFFSET` | QUIC: its loops and worker-id offset, which must be the old one's |
/// | new | `takeover KIND LOOPS OFFSET` | KIND `tls` or `tls+quic`: what it serves, which must be what the old one serves |
/// | old | `sockets GENERATION` (QUIC), `sockets KIND GENERATION` + the descriptors | UDP group first, then the TCP listeners; or `refused: REASON` |
/// | new | `ready` | it serves and steers new connections to itself |
/// | old | `leaving` | (QUIC) its connections ended: steer nothing more to it |
/// | new | `steered` | done; the old process exits once it served what arrived |
/// | old | `staying` | (QUIC) a handshake began meanwhile: steer its packets here again |
/// | new | `steered` | done; the old process serves it, then says `leaving` again |
///
/// QUIC's messages are those of the first release of `--handover` (no KIND), so that a
/// process of that release hands over to this one; it refuses a KIND as not a takeover request.
/// Either side talks only to a process of its own user (or root), `SO_PEERCRED`.
///
/// If the new process ends after `ready` while the old one still serves — it crashed, or was
/// stopped — the old process takes the port back: it steers new connections to its own half
/// again, accepts on its copies of the TCP listening sockets, listens on PATH again and serves
/// as before its handover.
final class Handover: @unchecked Sendable {
    // @unchecked: the mutable state is behind `lock`.

    /// What a process serves; the next one must serve the same.
    enum Kind: String {
        case quic
        case tls
        case tlsAndQUIC = "tls+quic"

        /// The kind serving `transports` (`.tcp`, `.quic` or both).
        init(_ transports: [Transport]) {
            self = transports.contains(.tcp) ? (transports.contains(.quic) ? .tlsAndQUIC : .tls) : .quic
        }

        var servesQUIC: Bool { self != .tls }
        var servesTLS: Bool { self != .quic }
        /// The descriptors one handover passes per loop: the UDP group's two, a TCP listener.
        var socketsPerLoop: Int { (servesQUIC ? 2 : 0) + (servesTLS ? 1 : 0) }

        var description: String {
            switch self {
            case .quic: "QUIC (--quic or --http3)"
            case .tls: "TLS over TCP (--tls)"
            case .tlsAndQUIC: "TLS over TCP and QUIC (neither --tls nor --quic, or both)"
            }
        }
    }

    /// The sockets this generation serves: one per loop of each transport.
    struct Sockets {
        var udp: [UDPSocket] = []
        var tcp: [TCPSocket] = []
    }

    let kind: Kind
    /// This process's generation: 0 or 1, the half of the UDP group it serves (TLS: 0, 1, 0 …
    /// all the same).
    let generation: Int
    let loops: Int
    let workerIDOffset: Int
    let path: String
    let log: Logger
    /// The first worker id of this generation's connection IDs (`Listener.Options.workerID`).
    var firstWorkerID: UInt16 { UInt16(generation * loops) }
    /// Duplicates of all the UDP group's sockets, index order: kept open for the next process.
    private let group: [Int32]
    /// Duplicates of the TCP listening sockets: kept open for the next process, and to take
    /// the port back should it end early.
    private let tcpGroup: [Int32]
    private let lock = NSLock()
    /// The unix connection to the previous process while it lives (-1 then).
    private var predecessor: Int32
    /// The unix socket a next process connects to (-1 before ``start(listeners:drainTimeout:)`` and after a handover).
    private var server: Int32 = -1

    private init(kind: Kind, generation: Int, loops: Int, workerIDOffset: Int, path: String, group: [Int32], tcpGroup: [Int32],
                 predecessor: Int32, log: Logger) {
        self.kind = kind
        self.generation = generation
        self.loops = loops
        self.workerIDOffset = workerIDOffset
        self.path = path
        self.group = group
        self.tcpGroup = tcpGroup
        self.predecessor = predecessor
        self.log = log
    }

    /// How long a process waits for the other's answer before it gives up on it.
    static let answerTimeout = 30

    /// Takes the sockets over from the process listening on `path`, or — when none does —
    /// makes them bound to `address`: a generation group for QUIC, `loops` listening sockets
    /// for TLS. Returns the handover and the sockets this generation serves, one per loop.
    static func open(path: String, kind: Kind, address: SocketAddress, loops: Int, workerIDOffset: Int,
                     configuration: UDPSocket.Configuration, log: Logger) throws -> (Handover, Sockets) {
        let connection = try UnixSocket.connect(path)
        guard let connection else {
            // No process serves this path: the first generation.
            var sockets = Sockets()
            var group: [UDPSocket] = []
            if kind.servesQUIC {
                group = try UDPSocket.generationGroup(bindingTo: address, loops: loops, configuration: configuration, workerIDOffset: workerIDOffset)
                sockets.udp = Array(group.prefix(loops))
            }
            if kind.servesTLS {
                var bound = address
                for _ in 0..<loops {
                    let socket = try TCPSocket.listen(on: bound, reusePort: loops > 1)
                    bound = socket.localAddress ?? bound  // port 0: the rest join the port the first one got
                    sockets.tcp.append(socket)
                }
            }
            let handover = Handover(kind: kind, generation: 0, loops: loops, workerIDOffset: workerIDOffset, path: path,
                                    group: try group.map { try UnixSocket.duplicate($0.fileDescriptor) },
                                    tcpGroup: try sockets.tcp.map { try UnixSocket.duplicate($0.descriptor) }, predecessor: -1, log: log)
            return (handover, sockets)
        }
        var keep = false
        defer { if !keep { _ = Glibc.close(connection) } }
        try UnixSocket.checkPeer(connection, path: path, role: "the serving process")
        // A bounded wait for the answer: a process that never answers does not hold this one.
        UnixSocket.setReceiveTimeout(connection, seconds: answerTimeout)
        let request = kind == .quic ? "takeover \(loops) \(workerIDOffset)" : "takeover \(kind.rawValue) \(loops) \(workerIDOffset)"
        try UnixSocket.send(request, on: connection, path: path)
        let (reply, descriptors) = try UnixSocket.receive(on: connection, path: path, from: "the serving process")
        func failure(_ reason: String) -> CommandError {
            for descriptor in descriptors { _ = Glibc.close(descriptor) }
            return CommandError("--handover \(path): \(reason)")
        }
        let text = String(decoding: reply, as: UTF8.self)
        guard !text.isEmpty else { throw failure("the serving process closed the connection without an answer") }
        if text.hasPrefix("refused") { throw failure("the serving process \(UnixSocket.printable(text))") }
        let words = text.split(separator: " ", omittingEmptySubsequences: false)
        let expected = kind == .quic ? 2 : 3
        guard words.count == expected, words[0] == "sockets", kind == .quic || words[1] == kind.rawValue,
              let previous = Int(words[expected - 1]), (0...1).contains(previous) else {
            throw failure("the serving process answered “\(UnixSocket.printable(text))”, not the sockets of a \(kind.description) server")
        }
        guard descriptors.count == kind.socketsPerLoop * loops else {
            throw failure("the serving process passed \(descriptors.count) descriptor(s), not the \(kind.socketsPerLoop * loops) of a \(kind.description) server with --loops \(loops)")
        }
        let generation = 1 - previous
        let udpCount = kind.servesQUIC ? 2 * loops : 0
        var sockets = Sockets()
        do {
            for descriptor in descriptors[(generation * loops)..<(generation * loops + (kind.servesQUIC ? loops : 0))] {
                sockets.udp.append(try UDPSocket(adopting: try UnixSocket.duplicate(descriptor), configuration: configuration))
            }
            for descriptor in descriptors[udpCount...] {
                sockets.tcp.append(try TCPSocket(adopting: try UnixSocket.duplicate(descriptor)))
            }
        } catch {
            throw failure("a socket passed is not one of a \(kind.description) server: \(error)")
        }
        for (name, socketPort) in [("udp", sockets.udp.first?.localAddress.port), ("tcp", sockets.tcp.first?.localAddress?.port)] {
            if let socketPort, socketPort != address.port, address.port != 0 {
                throw failure("the serving process listens on \(name) port \(socketPort), not \(address.port)")
            }
        }
        UnixSocket.setReceiveTimeout(connection, seconds: 0)  // from now on the predecessor speaks when it has something to say
        keep = true
        let handover = Handover(kind: kind, generation: generation, loops: loops, workerIDOffset: workerIDOffset, path: path,
                                group: Array(descriptors[..<udpCount]), tcpGroup: Array(descriptors[udpCount...]), predecessor: connection, log: log)
        return (handover, sockets)
    }

    /// Starts the handover's part once `listeners` (this process's, one per transport of
    /// ``kind``) serve this generation's sockets: a new process steers new connections to
    /// itself and tells its predecessor; then every process listens on the path for the next
    /// one. `drainTimeout`: how long this process serves its connections after handing over
    /// before it closes them.
    func start(listeners: [Listener], drainTimeout: Double) throws {
        let predecessor = lock.withLock { self.predecessor }
        // Bound under another name and renamed over the path: a process connecting meanwhile
        // reaches the old process (which refuses it), never nothing. Before `ready`: once the
        // old process has its answer it closes its own listener, and the path must not then
        // lead nowhere (a process finding nothing there would start a group of its own).
        let server = try UnixSocket.listen(path)
        lock.withLock { self.server = server }
        if predecessor >= 0 {
            if kind.servesQUIC {
                try UDPSocket.steerGenerations(group[0], loops: loops, generation: generation, previousAlive: true, workerIDOffset: workerIDOffset)
            }
            try UnixSocket.send("ready", on: predecessor, path: path)
            let ports = listeners.map { "\($0.transport == .tcp ? "tcp" : "udp") port \($0.localAddresses.first?.port ?? 0)" }
            log.notice("took over \(ports.joined(separator: " and ")) from the previous process (generation \(generation) of \(path))")
            Thread.detachNewThread { self.watchPredecessor(predecessor, listeners: listeners) }
        }
        Thread.detachNewThread { self.acceptNext(server: server, listeners: listeners, drainTimeout: drainTimeout) }
    }

    /// In a new process: answers the predecessor's `leaving` by steering nothing more to it
    /// (`staying`: its handshakes' packets to it again), and notes its end.
    private func watchPredecessor(_ connection: Int32, listeners: [Listener]) {
        while let message = try? UnixSocket.receiveMessage(on: connection), !message.isEmpty {
            let text = String(decoding: message, as: UTF8.self)
            guard text == "leaving" || text == "staying" else { continue }
            do {
                if kind.servesQUIC {
                    try UDPSocket.steerGenerations(group[0], loops: loops, generation: generation, previousAlive: text == "staying",
                                                   workerIDOffset: workerIDOffset)
                }
                try DescriptorPassing.send(Array("steered".utf8), on: connection)
            } catch {
                log.error("--handover: could not steer the previous process's datagrams away: \(error)")
            }
        }
        // However the previous process ended — it said `leaving`, its drain timed out, it
        // crashed — nothing reads its half any more: steer nothing there.
        if kind.servesQUIC {
            do {
                try UDPSocket.steerGenerations(group[0], loops: loops, generation: generation, previousAlive: false, workerIDOffset: workerIDOffset)
            } catch {
                log.error("--handover: could not steer the previous process's datagrams away: \(error)")
            }
        }
        lock.withLock { predecessor = -1 }
        _ = Glibc.close(connection)
        log.notice("the previous process has left; ready for the next handover (\(Self.describe(listeners)))")
    }

    /// Waits for the next process on the path and hands the sockets over to it — one at a
    /// time, and not while the previous process still lives.
    private func acceptNext(server: Int32, listeners: [Listener], drainTimeout: Double) {
        while true {
            let connection = accept(server, nil, nil)
            guard connection >= 0 else {
                if errno == EINTR || errno == ECONNABORTED { continue }
                return  // closed
            }
            _ = fcntl(connection, F_SETFD, FD_CLOEXEC)
            switch handOver(on: connection, listeners: listeners, drainTimeout: drainTimeout) {
            case .refused:
                _ = Glibc.close(connection)
            case .handedOver:
                return
            case .tookBack:
                // The successor ended early: this process serves the path again (the next
                // process connects to the new server socket; this one is closed).
                return
            }
        }
    }

    private enum Outcome {
        /// No handover: this process serves on.
        case refused
        /// The sockets went over; this process drained and closed its listeners.
        case handedOver
        /// The sockets went over, but the successor ended before it served or before this
        /// process left: this one serves again, and listens at the path on a new socket.
        case tookBack
    }

    /// One takeover attempt.
    private func handOver(on connection: Int32, listeners: [Listener], drainTimeout: Double) -> Outcome {
        func refuse(_ reason: String) -> Outcome {
            log.warning("--handover: refused a takeover: \(reason)")
            try? DescriptorPassing.send(Array("refused: \(reason)".utf8), on: connection)
            return .refused
        }
        let uid = DescriptorPassing.peerUserID(of: connection)
        guard uid == getuid() || uid == 0 else {
            return refuse("it runs as uid \(uid.map { "\($0)" } ?? "unknown"), this process as uid \(getuid()): only the same user (or root) takes over")
        }
        // The request within a bounded time: a process that connects and says nothing does not
        // hold the path from the next one.
        UnixSocket.setReceiveTimeout(connection, seconds: Self.answerTimeout)
        let request: [UInt8]
        do {
            request = try UnixSocket.receiveMessage(on: connection)
        } catch {
            log.warning("--handover: a process connected but sent no request: \(error)")
            return .refused
        }
        guard !request.isEmpty else {
            log.warning("--handover: a process connected and left without a request")
            return .refused
        }
        let text = String(decoding: request, as: UTF8.self)
        let words = text.split(separator: " ", omittingEmptySubsequences: false)
        // `takeover LOOPS OFFSET` (QUIC, the first release's form) or `takeover KIND LOOPS OFFSET`.
        guard words.first == "takeover", words.count == 3 || words.count == 4 else {
            return refuse("not a takeover request: “\(UnixSocket.printable(text))”")
        }
        guard let requested = words.count == 3 ? Kind.quic : Kind(rawValue: String(words[1])) else {
            return refuse("it asks for the sockets of “\(UnixSocket.printable(String(words[1])))”, which this version does not know")
        }
        guard requested == kind else {
            return refuse("it serves \(kind.description), not \(requested.description): start the new process alike")
        }
        guard Int(words[words.count - 2]) == loops, !kind.servesQUIC || Int(words[words.count - 1]) == workerIDOffset else {
            return refuse(kind.servesQUIC ? "it serves with --loops \(loops) and worker ids at connection ID octet \(workerIDOffset); start the new process alike"
                                          : "it serves with --loops \(loops); start the new process alike")
        }
        if lock.withLock({ predecessor >= 0 }) {
            return refuse("its own predecessor still serves connections (one restart at a time)")
        }
        do {
            let answer = kind == .quic ? "sockets \(generation)" : "sockets \(kind.rawValue) \(generation)"
            try DescriptorPassing.send(Array(answer.utf8), descriptors: group + tcpGroup, on: connection)
        } catch {
            log.error("--handover: could not pass the sockets: \(error)")
            return .refused
        }
        // No bound on this wait: the new process makes its listeners now, and until it says
        // `ready` (or leaves) this one serves everything as before.
        UnixSocket.setReceiveTimeout(connection, seconds: 0)
        let ready = (try? UnixSocket.receiveMessage(on: connection)).map { String(decoding: $0, as: UTF8.self) }
        guard ready == "ready" else {
            // The new process failed before serving: new connections are ours again. It may
            // have put its own socket at the path already: listen there again, or the next
            // restart would find nobody and start a group of its own beside this one.
            if kind.servesQUIC {
                try? UDPSocket.steerGenerations(group[0], loops: loops, generation: generation, previousAlive: false, workerIDOffset: workerIDOffset)
            }
            do {
                try listenAgain(listeners: listeners, drainTimeout: drainTimeout)
            } catch {
                log.error("--handover: the new process left before serving, and \(path) cannot be listened on again (\(error)); serving on without restarts")
                return .refused
            }
            log.warning("--handover: the new process left before serving; serving on")
            _ = Glibc.close(connection)
            return .tookBack
        }
        lock.withLock {
            _ = Glibc.close(server)
            server = -1
        }
        // The new process accepts on the same listening sockets now: stop accepting here.
        for listener in listeners where listener.transport == .tcp { listener.closeListeningSockets() }
        if drain(listeners: listeners, successor: connection, deadline: Date(timeIntervalSinceNow: drainTimeout)) {
            return .handedOver
        }
        return takeBack(listeners: listeners, drainTimeout: drainTimeout) ? .tookBack : .handedOver
    }

    /// After the handover: serves the connections until they ended or `deadline` passed, has the
    /// successor steer nothing more here, serves what had already arrived, and closes the
    /// listeners (which ends `quiver serve`). Returns `false`, without closing anything, when
    /// the successor ended first: then nothing else serves the port.
    private func drain(listeners: [Listener], successor: Int32, deadline: Date) -> Bool {
        let ours = kind.servesQUIC ? Array(group[(generation * loops)..<(generation * loops + loops)]) : []
        func connections() -> Int { listeners.reduce(0) { $0 + $1.statistics.connections } }
        log.notice("handed the sockets over; serving \(connections()) connection(s) until they end (at most \(Int(deadline.timeIntervalSinceNow.rounded())) s)")
        var successorGone = false
        // Polled: a listener has no "last connection ended" event, and a few milliseconds
        // late costs nothing here. `false` at the deadline, or when the successor ended.
        func wait(until done: () -> Bool) -> Bool {
            while !done() {
                if UnixSocket.peerHasClosed(successor) {
                    successorGone = true
                    return false
                }
                if Date() >= deadline { return false }
                usleep(20_000)
            }
            return true
        }
        func tell(_ message: String) -> Bool {
            // An answer within the drain's time left (at least a second): a successor that
            // does not answer does not hold this process past its deadline.
            UnixSocket.setReceiveTimeout(successor, seconds: max(1, Int(deadline.timeIntervalSinceNow.rounded(.up))))
            guard (try? DescriptorPassing.send(Array(message.utf8), on: successor)) != nil else { return false }
            return (try? UnixSocket.receiveMessage(on: successor)).map { String(decoding: $0, as: UTF8.self) } == "steered"
        }
        var ended = false
        if kind.servesQUIC {
            // New clients whose random DCID names one of our workers (loops in 65 536) still come
            // here until the successor steers; they are served like the others.
            while wait(until: { connections() == 0 }) {
                guard tell("leaving") else {
                    if !UnixSocket.peerHasClosed(successor) { log.warning("--handover: the new process did not confirm; leaving") }
                    break
                }
                // Nothing new arrives now: serve what did (a queued datagram is read, and under
                // the loop's lock handled, before the statistics read the count).
                guard wait(until: { !ours.contains(where: UDPSocket.hasPendingDatagram) }) else { break }
                if connections() == 0 {
                    ended = true
                    break
                }
                // A client's first Initial came in just before the successor steered: the rest of
                // its handshake (long headers naming our worker) must come here too.
                guard tell("staying") else { break }
            }
        } else {
            // No new connection reaches this process (it closed its listening sockets).
            ended = wait(until: { connections() == 0 })
        }
        // The successor ended before this process left (checked once more at the end: it may
        // have ended while this one was told `steered`): the port is this process's again.
        if successorGone || UnixSocket.peerHasClosed(successor) {
            _ = Glibc.close(successor)
            return false
        }
        log.notice(ended ? "connections ended: leaving (\(Self.describe(listeners)))"
                         : "drain timeout: closing \(connections()) connection(s) (\(Self.describe(listeners)))")
        for listener in listeners { listener.close(code: 0, reason: "restarted") }
        _ = Glibc.close(successor)
        return true
    }

    /// Listens at the path again, for the next restart, on a new socket (the one before is
    /// closed, and its accepting thread ends).
    private func listenAgain(listeners: [Listener], drainTimeout: Double) throws {
        let server = try UnixSocket.listen(path)
        let old = lock.withLock {
            let old = self.server
            self.server = server
            return old
        }
        if old >= 0 { _ = Glibc.close(old) }
        Thread.detachNewThread { self.acceptNext(server: server, listeners: listeners, drainTimeout: drainTimeout) }
    }

    /// The successor ended after it took over and before this process left: new connections
    /// come here again — the steering program gives this generation every new connection, the
    /// listeners accept on this process's copies of the TCP listening sockets (connections the
    /// kernel queued in them meanwhile included) — and this process listens on the path for
    /// the next one. `false` (after closing the listeners) when it cannot.
    private func takeBack(listeners: [Listener], drainTimeout: Double) -> Bool {
        do {
            if kind.servesQUIC {
                try UDPSocket.steerGenerations(group[0], loops: loops, generation: generation, previousAlive: false, workerIDOffset: workerIDOffset)
            }
            if let tcp = listeners.first(where: { $0.transport == .tcp }) {
                for descriptor in tcpGroup { try tcp.attach(.tcpListener(try TCPSocket(adopting: try UnixSocket.duplicate(descriptor)))) }
            }
            try listenAgain(listeners: listeners, drainTimeout: drainTimeout)
            log.warning("--handover: the new process ended after taking over; took the port back and serve new connections again (\(Self.describe(listeners)))")
            return true
        } catch {
            log.error("--handover: the new process ended after taking over, and the port cannot be taken back (\(error)); closing")
            for listener in listeners { listener.close(code: 0, reason: "restarted") }
            return false
        }
    }
}

extension Handover {
    /// What tells whether packets or connections reached a process that did not know them.
    static func describe(_ listeners: [Listener]) -> String {
        listeners.map { describe($0.statistics) }.joined(separator: "; ")
    }

    static func describe(_ statistics: Listener.Statistics) -> String {
        if let tls = statistics.tls {
            return "tls connections accepted \(tls.connectionsAccepted), handshakes failed \(tls.handshakesFailed)"
        }
        guard let quic = statistics.quic else { return "no QUIC statistics" }
        return "connections created \(quic.connectionsCreated), handshakes failed \(quic.handshakesFailed), stateless resets sent \(quic.statelessResetsSent), datagrams for no connection dropped \(quic.datagramsDropped)"
    }
}

/// The few unix-socket calls `--handover` makes.
enum UnixSocket {
    /// A connection to the unix stream socket at `path`, or `nil` when nothing listens there.
    static func connect(_ path: String) throws -> Int32? {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw CommandError("--handover: socket: \(String(cString: strerror(errno)))") }
        let rc = try withAddress(path) { Glibc.connect(fd, $0, $1) }
        if rc == 0 { return fd }
        let code = errno
        _ = Glibc.close(fd)
        if code == ENOENT || code == ECONNREFUSED { return nil }
        throw CommandError("--handover \(path): connect: \(String(cString: strerror(code)))")
    }

    /// A unix stream socket listening at `path`: bound under a temporary name, then renamed
    /// over `path` (replacing an older one at once).
    static func listen(_ path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw CommandError("--handover: socket: \(String(cString: strerror(errno)))") }
        let temporary = "\(path).\(getpid())"
        unlink(temporary)
        guard try withAddress(temporary, { bind(fd, $0, $1) }) == 0, Glibc.listen(fd, 4) == 0, rename(temporary, path) == 0 else {
            let code = errno
            _ = Glibc.close(fd)
            unlink(temporary)
            throw CommandError("--handover \(path): \(String(cString: strerror(code)))")
        }
        return fd
    }

    /// Refuses a peer of another user than this process's (root excepted): `SO_PEERCRED`.
    static func checkPeer(_ connection: Int32, path: String, role: String) throws {
        let uid = DescriptorPassing.peerUserID(of: connection)
        guard uid == getuid() || uid == 0 else {
            throw CommandError("--handover \(path): \(role) runs as uid \(uid.map { "\($0)" } ?? "unknown"), this one as uid \(getuid()): only the same user (or root) hands over")
        }
    }

    /// Receives one message that carries no descriptors. Any passed along anyway are closed: a
    /// peer must not leave descriptors open in this long-lived process.
    static func receiveMessage(on connection: Int32) throws(QuiverError) -> [UInt8] {
        let message = try DescriptorPassing.receive(on: connection)
        for descriptor in message.descriptors { _ = Glibc.close(descriptor) }
        return message.bytes
    }

    /// Bounds how long a receive on `connection` waits (0: no bound).
    static func setReceiveTimeout(_ connection: Int32, seconds: Int) {
        var timeout = timeval(tv_sec: seconds, tv_usec: 0)
        _ = setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Sends one message, or throws a one-line ``CommandError``.
    static func send(_ message: String, on connection: Int32, path: String) throws {
        do {
            try DescriptorPassing.send(Array(message.utf8), on: connection)
        } catch {
            throw CommandError("--handover \(path): could not send “\(message)”: \(error)")
        }
    }

    /// Receives one message (and the descriptors passed with it), or throws a one-line
    /// ``CommandError``, saying so when the receive timeout passed.
    static func receive(on connection: Int32, path: String, from peer: String) throws -> (bytes: [UInt8], descriptors: [Int32]) {
        let start = Date()
        do {
            return try DescriptorPassing.receive(on: connection)
        } catch {
            if Date().timeIntervalSince(start) >= Double(Handover.answerTimeout) - 0.5 {
                throw CommandError("--handover \(path): \(peer) did not answer within \(Handover.answerTimeout) s")
            }
            throw CommandError("--handover \(path): no answer from \(peer): \(error)")
        }
    }

    /// Whether the process at the other end of `connection` closed it (it ended): readable
    /// with nothing to read. Does not wait, and reads nothing.
    static func peerHasClosed(_ connection: Int32) -> Bool {
        var descriptor = pollfd(fd: connection, events: Int16(POLLIN), revents: 0)
        guard poll(&descriptor, 1, 0) > 0 else { return false }
        if descriptor.revents & (Int16(POLLHUP) | Int16(POLLERR)) != 0 { return true }
        var byte: UInt8 = 0
        return recv(connection, &byte, 1, Int32(MSG_PEEK) | Int32(MSG_DONTWAIT)) == 0
    }

    /// A peer's text for a one-line message: at most 80 characters, control characters as `?`.
    static func printable(_ text: String) -> String {
        let clean = String(text.unicodeScalars.map { $0.properties.generalCategory == .control ? "?" : Character($0) })
        return clean.count > 80 ? clean.prefix(80) + "…" : clean
    }

    /// `dup(descriptor)`, close-on-exec.
    static func duplicate(_ descriptor: Int32) throws -> Int32 {
        let copy = fcntl(descriptor, F_DUPFD_CLOEXEC, 0)
        guard copy >= 0 else { throw CommandError("--handover: dup: \(String(cString: strerror(errno)))") }
        return copy
    }

    private static func withAddress<T>(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> T) throws -> T {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard !bytes.isEmpty, bytes.count < capacity else {
            throw CommandError("--handover \(path): a unix socket path is 1 to \(capacity - 1) bytes")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }
}
