#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import Quiver
import QuiverCore
import QuiverUDP

/// `quiver serve --handover PATH`: restarting a QUIC server without dropping a connection
/// (docs/DEPLOYMENT.md, "Restarting without dropping connections").
///
/// The first process makes a `UDPSocket.generationGroup`: twice `--loops` sockets in one
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
/// The unix socket carries one short text message at a time:
///
/// | from | message | meaning |
/// |---|---|---|
/// | new | `takeover LOOPS OFFSET` | its loops and worker-id offset, which must be the old one's |
/// | old | `sockets GENERATION` + the group's descriptors | or `refused REASON` |
/// | new | `ready` | it serves and steers new connections to itself |
/// | old | `leaving` | its connections ended: steer nothing more to it |
/// | new | `steered` | done; the old process exits once it served what arrived |
/// | old | `staying` | a handshake began meanwhile: steer its packets here again |
/// | new | `steered` | done; the old process serves it, then says `leaving` again |
final class Handover: @unchecked Sendable {
    // @unchecked: the mutable state is behind `lock`.
    /// This process's generation: 0 or 1, the half of the group it serves.
    let generation: Int
    let loops: Int
    let workerIDOffset: Int
    let path: String
    let log: Logger
    /// The first worker id of this generation's connection IDs (`Listener.Options.workerID`).
    var firstWorkerID: UInt16 { UInt16(generation * loops) }
    /// Duplicates of all the group's sockets, index order: kept open for the next process.
    private let group: [Int32]
    private let lock = NSLock()
    /// The unix connection to the previous process while it lives (-1 then).
    private var predecessor: Int32
    /// The unix socket a next process connects to (-1 before ``start(listener:drainTimeout:)`` and after a handover).
    private var server: Int32 = -1

    private init(generation: Int, loops: Int, workerIDOffset: Int, path: String, group: [Int32], predecessor: Int32, log: Logger) {
        self.generation = generation
        self.loops = loops
        self.workerIDOffset = workerIDOffset
        self.path = path
        self.group = group
        self.predecessor = predecessor
        self.log = log
    }

    /// Takes the sockets over from the process listening on `path`, or — when none does —
    /// makes a new generation group bound to `address`. Returns the handover and the sockets
    /// this generation serves, one per loop.
    static func open(path: String, address: SocketAddress, loops: Int, workerIDOffset: Int, configuration: UDPSocket.Configuration,
                     log: Logger) throws -> (Handover, [UDPSocket]) {
        let connection = try UnixSocket.connect(path)
        guard let connection else {
            // No process serves this path: the first generation.
            let sockets = try UDPSocket.generationGroup(bindingTo: address, loops: loops, configuration: configuration, workerIDOffset: workerIDOffset)
            let group = try sockets.map { try UnixSocket.duplicate($0.fileDescriptor) }
            let handover = Handover(generation: 0, loops: loops, workerIDOffset: workerIDOffset, path: path, group: group, predecessor: -1, log: log)
            return (handover, Array(sockets.prefix(loops)))
        }
        var keep = false
        defer { if !keep { _ = Glibc.close(connection) } }
        try DescriptorPassing.send(Array("takeover \(loops) \(workerIDOffset)".utf8), on: connection)
        let (reply, descriptors) = try DescriptorPassing.receive(on: connection)
        let text = String(decoding: reply, as: UTF8.self)
        guard text.hasPrefix("sockets "), let previous = Int(text.dropFirst("sockets ".count)), (0...1).contains(previous),
              descriptors.count == 2 * loops else {
            for descriptor in descriptors { _ = Glibc.close(descriptor) }
            throw CommandError("--handover \(path): the serving process \(text.isEmpty ? "closed the connection" : text)")
        }
        let generation = 1 - previous
        var ours: [UDPSocket] = []
        for descriptor in descriptors[(generation * loops)..<(generation * loops + loops)] {
            ours.append(try UDPSocket(adopting: try UnixSocket.duplicate(descriptor), configuration: configuration))
        }
        if ours[0].localAddress.port != address.port, address.port != 0 {
            for descriptor in descriptors { _ = Glibc.close(descriptor) }
            throw CommandError("--handover \(path): the serving process listens on port \(ours[0].localAddress.port), not \(address.port)")
        }
        keep = true
        let handover = Handover(generation: generation, loops: loops, workerIDOffset: workerIDOffset, path: path, group: descriptors,
                                predecessor: connection, log: log)
        return (handover, ours)
    }

    /// Starts the handover's part once `listener` serves this generation's sockets: a new
    /// process steers new connections to itself and tells its predecessor; then every process
    /// listens on the path for the next one. `drainTimeout`: how long this process serves its
    /// connections after handing over before it closes them.
    func start(listener: Listener, drainTimeout: Double) throws {
        let predecessor = lock.withLock { self.predecessor }
        // Bound under another name and renamed over the path: a process connecting meanwhile
        // reaches the old process (which refuses it), never nothing. Before `ready`: once the
        // old process has its answer it closes its own listener, and the path must not then
        // lead nowhere (a process finding nothing there would start a group of its own).
        let server = try UnixSocket.listen(path)
        lock.withLock { self.server = server }
        if predecessor >= 0 {
            try UDPSocket.steerGenerations(group[0], loops: loops, generation: generation, previousAlive: true, workerIDOffset: workerIDOffset)
            try DescriptorPassing.send(Array("ready".utf8), on: predecessor)
            log.notice("took over udp port \(listener.localAddresses.first?.port ?? 0) from the previous process (generation \(generation) of \(path))")
            Thread.detachNewThread { self.watchPredecessor(predecessor, listener: listener) }
        }
        Thread.detachNewThread { self.acceptNext(server: server, listener: listener, drainTimeout: drainTimeout) }
    }

    /// In a new process: answers the predecessor's `leaving` by steering nothing more to it
    /// (`staying`: its handshakes' packets to it again), and notes its end.
    private func watchPredecessor(_ connection: Int32, listener: Listener) {
        while let message = try? DescriptorPassing.receive(on: connection).bytes, !message.isEmpty {
            let text = String(decoding: message, as: UTF8.self)
            guard text == "leaving" || text == "staying" else { continue }
            do {
                try UDPSocket.steerGenerations(group[0], loops: loops, generation: generation, previousAlive: text == "staying",
                                               workerIDOffset: workerIDOffset)
                try DescriptorPassing.send(Array("steered".utf8), on: connection)
            } catch {
                log.error("--handover: could not steer the previous process's datagrams away: \(error)")
            }
        }
        // However the previous process ended — it said `leaving`, its drain timed out, it
        // crashed — nothing reads its half any more: steer nothing there.
        do {
            try UDPSocket.steerGenerations(group[0], loops: loops, generation: generation, previousAlive: false, workerIDOffset: workerIDOffset)
        } catch {
            log.error("--handover: could not steer the previous process's datagrams away: \(error)")
        }
        lock.withLock { predecessor = -1 }
        _ = Glibc.close(connection)
        log.notice("the previous process has left; ready for the next handover (\(Self.describe(listener.statistics)))")
    }

    /// Waits for the next process on the path and hands the sockets over to it — one at a
    /// time, and not while the previous process still lives.
    private func acceptNext(server: Int32, listener: Listener, drainTimeout: Double) {
        while true {
            let connection = accept(server, nil, nil)
            guard connection >= 0 else {
                if errno == EINTR { continue }
                return  // closed
            }
            _ = fcntl(connection, F_SETFD, FD_CLOEXEC)
            if handOver(on: connection, listener: listener, drainTimeout: drainTimeout) { return }
            _ = Glibc.close(connection)
        }
    }

    /// One takeover attempt; `true` when the sockets went over (this process now drains).
    private func handOver(on connection: Int32, listener: Listener, drainTimeout: Double) -> Bool {
        func refuse(_ reason: String) -> Bool {
            try? DescriptorPassing.send(Array("refused: \(reason)".utf8), on: connection)
            return false
        }
        guard let request = try? DescriptorPassing.receive(on: connection).bytes else { return false }
        let words = String(decoding: request, as: UTF8.self).split(separator: " ")
        guard words.count == 3, words[0] == "takeover" else { return refuse("not a takeover request") }
        guard Int(words[1]) == loops, Int(words[2]) == workerIDOffset else {
            return refuse("it serves with --loops \(loops) and worker ids at connection ID octet \(workerIDOffset); start the new process alike")
        }
        if lock.withLock({ predecessor >= 0 }) {
            return refuse("its own predecessor still serves connections (one restart at a time)")
        }
        do {
            try DescriptorPassing.send(Array("sockets \(generation)".utf8), descriptors: group, on: connection)
        } catch {
            log.error("--handover: could not pass the sockets: \(error)")
            return false
        }
        let ready = (try? DescriptorPassing.receive(on: connection).bytes).map { String(decoding: $0, as: UTF8.self) }
        guard ready == "ready" else {
            // The new process failed before serving: new connections are ours again.
            try? UDPSocket.steerGenerations(group[0], loops: loops, generation: generation, previousAlive: false, workerIDOffset: workerIDOffset)
            log.warning("--handover: the new process left before serving; serving on")
            return false
        }
        lock.withLock {
            _ = Glibc.close(server)
            server = -1
        }
        drain(listener: listener, successor: connection, deadline: Date(timeIntervalSinceNow: drainTimeout))
        return true
    }

    /// After the handover: serves the connections until they ended or `deadline` passed, has the
    /// successor steer nothing more here, serves what had already arrived, and closes the
    /// listener (which ends `quiver serve`).
    private func drain(listener: Listener, successor: Int32, deadline: Date) {
        let ours = Array(group[(generation * loops)..<(generation * loops + loops)])
        log.notice("handed the sockets over; serving \(listener.statistics.connections) connection(s) until they end (at most \(Int(deadline.timeIntervalSinceNow.rounded())) s)")
        // Polled: a listener has no "last connection ended" event, and a few milliseconds
        // late costs nothing here.
        func wait(until done: () -> Bool) -> Bool {
            while !done() {
                if Date() >= deadline { return false }
                usleep(20_000)
            }
            return true
        }
        func tell(_ message: String) -> Bool {
            // An answer within the drain's time left (at least a second): a successor that
            // does not answer does not hold this process past its deadline.
            var timeout = timeval(tv_sec: max(1, Int(deadline.timeIntervalSinceNow.rounded(.up))), tv_usec: 0)
            _ = setsockopt(successor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            guard (try? DescriptorPassing.send(Array(message.utf8), on: successor)) != nil else { return false }
            return (try? DescriptorPassing.receive(on: successor).bytes).map { String(decoding: $0, as: UTF8.self) } == "steered"
        }
        // New clients whose random DCID names one of our workers (loops in 65 536) still come
        // here until the successor steers; they are served like the others.
        var ended = false
        while wait(until: { listener.statistics.connections == 0 }) {
            guard tell("leaving") else {
                log.warning("--handover: the new process did not confirm; leaving")
                break
            }
            // Nothing new arrives now: serve what did (a queued datagram is read, and under
            // the loop's lock handled, before the statistics read the count).
            guard wait(until: { !ours.contains(where: UDPSocket.hasPendingDatagram) }) else { break }
            if listener.statistics.connections == 0 {
                ended = true
                break
            }
            // A client's first Initial came in just before the successor steered: the rest of
            // its handshake (long headers naming our worker) must come here too.
            guard tell("staying") else { break }
        }
        let statistics = listener.statistics
        log.notice(ended ? "connections ended: leaving (\(Self.describe(statistics)))"
                         : "drain timeout: closing \(statistics.connections) connection(s) (\(Self.describe(statistics)))")
        listener.close(code: 0, reason: "restarted")
        _ = Glibc.close(successor)
    }
}

extension Handover {
    /// What tells whether datagrams reached a process that did not know their connection.
    static func describe(_ statistics: Listener.Statistics) -> String {
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
