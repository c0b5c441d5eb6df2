#if canImport(Glibc)
import Glibc
#endif
import CQuiverUDP
public import QuiverCore

extension UDPSocket {
    /// Makes the SO_REUSEPORT group of a server that restarts without dropping connections:
    /// `2 * loops` sockets bound to `address`, socket *i* being the group's index *i*, in two
    /// halves, one per generation of the server — generation 0 serves sockets `0..<loops` with
    /// connection IDs carrying worker ids `0..<loops`, generation 1 sockets and worker ids
    /// `loops..<2 * loops`. The steering program attached (``steerGenerations(_:loops:generation:previousAlive:workerIDOffset:)``)
    /// gives generation 0 every new connection. A restarted server receives all the sockets
    /// (`DescriptorPassing`), so none of them closes while a process still serves the group:
    /// the kernel would move the last socket into a closed one's index, and steering by index
    /// would then send datagrams to the wrong process.
    ///
    /// - Throws: ``QuiverError`` as ``steeringGroup(bindingTo:count:configuration:dtls:workerIDOffset:)``.
    public static func generationGroup(bindingTo address: SocketAddress, loops: Int, configuration: Configuration = Configuration(),
                                       workerIDOffset: Int = 1) throws(QuiverError) -> [UDPSocket] {
        precondition(loops > 0 && loops <= 0x7fff, "1…32767 loops")
        let sockets = try steeringGroup(bindingTo: address, count: 2 * loops, configuration: configuration, workerIDOffset: workerIDOffset)
        try steerGenerations(sockets[0].fileDescriptor, loops: loops, generation: 0, previousAlive: false, workerIDOffset: workerIDOffset)
        return sockets
    }

    /// Replaces the steering program of the group of `descriptor` (any of its sockets) (one made by
    /// ``generationGroup(bindingTo:loops:configuration:workerIDOffset:)``) so that `generation`
    /// (0 or 1) gets the new connections: every short-header datagram goes to the socket of the
    /// worker id its connection ID carries, whichever generation's; a long-header one goes to
    /// the socket of its worker id while `previousAlive` and that id is the other generation's
    /// (its handshakes in progress), and otherwise to a socket of `generation`, chosen by
    /// the same DCID bytes (a client's first Initials carry a DCID it chose at random). While
    /// the previous generation lives, a client whose random DCID names one of its workers
    /// (`loops` in 65 536) is served there; attach the program again with `previousAlive`
    /// `false` before that process leaves.
    ///
    /// - Throws: ``QuiverError`` `.configuration` when the kernel refuses the program.
    public static func steerGenerations(_ descriptor: Int32, loops: Int, generation: Int, previousAlive: Bool,
                                        workerIDOffset: Int = 1) throws(QuiverError) {
        precondition(loops > 0 && loops <= 0x7fff && (0...1).contains(generation), "1…32767 loops, generation 0 or 1")
        precondition((1...18).contains(workerIDOffset), "a worker id at DCID octets 1…19")
        let newBase = UInt32(generation * loops)
        let oldBase = previousAlive ? UInt32((1 - generation) * loops) : 0x10000
        guard quiver_attach_generation_steering(descriptor, UInt32(1 + workerIDOffset), UInt32(6 + workerIDOffset),
                                                UInt32(loops), newBase, oldBase) == 0 else {
            throw QuiverError(.configuration, "SO_ATTACH_REUSEPORT_CBPF refused: \(String(cString: strerror(errno)))")
        }
    }

    /// Whether a datagram waits in the receive queue of the UDP socket `descriptor` (`FIONREAD`);
    /// `false` for one that is not open. A descriptor number rather than a `UDPSocket`: another
    /// thread than the socket's may ask.
    public static func hasPendingDatagram(_ descriptor: Int32) -> Bool {
        descriptor >= 0 && quiver_pending_datagram_bytes(descriptor) > 0
    }
}
