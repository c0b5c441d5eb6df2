// libFuzzer target: PacketHeader.parse / PacketHeader.split on arbitrary datagrams.
//
// Nothing in the header parser may trap. Beyond that, parsed headers must describe the bytes
// they came from: ranges from split are contiguous and in bounds, Retry and Version
// Negotiation packets re-encode to their exact input, and a long header re-encoded with
// LongHeader.encode parses back to the same fields.
import FuzzDriver
import QuiverCore
@_spi(Wire) import QuiverQUIC

private let connectionIDLengths = [0, 1, 4, 8, 20]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let datagram = size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size))

    // Coalesced-packet walk with every configuration.
    for cidLength in connectionIDLengths {
        for grease in [false, true] {
            var expected = 0
            for (range, header) in PacketHeader.split(datagram, shortHeaderConnectionIDLength: cidLength, allowGreasedFixedBit: grease) {
                require(range.lowerBound == expected && range.upperBound <= datagram.count && !range.isEmpty,
                        "split produced range \(range) (expected start \(expected), datagram \(datagram.count) bytes)")
                expected = range.upperBound
                check(header, Array(datagram[range]), cidLength: cidLength, grease: grease)
            }
        }
    }

    // Parse at arbitrary offsets, the configuration varying with the offset. Every offset of
    // short inputs; for long ones (parse copies the rest of the datagram) the first 64 and then
    // every 17th, which keeps a 1200-byte Initial cheap.
    let offsets = datagram.count <= 128 ? Array(0...datagram.count)
        : Array(0..<64) + Array(stride(from: 64, through: datagram.count, by: 17))
    for offset in offsets {
        let cidLength = connectionIDLengths[offset % connectionIDLengths.count]
        let grease = offset & 1 == 0
        guard let header = try? PacketHeader.parse(datagram, at: offset, shortHeaderConnectionIDLength: cidLength, allowGreasedFixedBit: grease)
        else { continue }
        var end = datagram.count
        if case .long(let h) = header {
            require(h.packetLength > 0 && offset + h.packetLength <= datagram.count, "long header length out of bounds")
            end = offset + h.packetLength
        }
        check(header, Array(datagram[offset..<end]), cidLength: cidLength, grease: grease)
    }
    return 0
}

/// Invariants of one parsed packet; `packet` is exactly the bytes the header claims.
private func check(_ header: PacketHeader, _ packet: [UInt8], cidLength: Int, grease: Bool) {
    require(!packet.isEmpty)
    let first = packet[0]
    switch header {
    case .short(let h):
        require(first & 0x80 == 0 && (grease || first & 0x40 != 0), "short header with first byte \(first)")
        require(h.destinationConnectionID.bytes == Array(packet[1..<(1 + cidLength)]), "short header DCID mismatch")
        require(h.packetNumberOffset == 1 + cidLength)
    case .long(let h):
        require(first & 0x80 != 0 && (grease || first & 0x40 != 0))
        require(h.packetNumberOffset < h.packetLength && h.packetLength == packet.count, "long header offsets inconsistent")
        require(h.destinationConnectionID.count <= 20 && h.sourceConnectionID.count <= 20)
        require(h.token.isEmpty || h.type == .initial, "token on a non-Initial packet")
        // Re-encode (1-byte packet number, same remaining length) and parse again.
        var w = ByteWriter()
        let payloadLength = h.packetLength - h.packetNumberOffset - 1
        let pnOffset = h.encode(into: &w, packetNumber: 0, packetNumberLength: 1, payloadLength: payloadLength)
        w.writeBytes(repeatElement(0, count: payloadLength))
        guard case .long(let again)? = try? PacketHeader.parse(w.bytes, shortHeaderConnectionIDLength: cidLength) else {
            fatalError("re-encoded long header does not parse: \(h)")
        }
        require(again.type == h.type && again.version == h.version
                && again.destinationConnectionID == h.destinationConnectionID
                && again.sourceConnectionID == h.sourceConnectionID && again.token == h.token
                && again.packetNumberOffset == pnOffset && again.packetLength == w.count,
                "long header round trip differs: \(h) vs \(again)")
    case .retry(let r):
        require(r.integrityTag.count == 16 && !r.token.isEmpty)
        if first & 0x40 != 0 {
            let encoded = r.encodedWithoutTag(unusedBits: first & 0x0f) + r.integrityTag
            require(encoded == packet, "Retry re-encoding differs")
        }
    case .versionNegotiation(let v):
        require(!v.supportedVersions.isEmpty)
        require(v.encoded(unusedBits: first & 0x7f) == packet, "Version Negotiation re-encoding differs")
    case .unsupportedVersion(let version, let dcid, let scid):
        require(first & 0x80 != 0 && !version.isSupported && version != .negotiation)
        require(dcid.count <= 255 && scid.count <= 255)
    }
}

/// A precondition whose message survives -O (precondition's does not): prints and traps.
private func require(_ condition: Bool, _ message: @autoclosure () -> String = "", file: StaticString = #fileID, line: UInt = #line) {
    if !condition { fatalError(message(), file: file, line: line) }
}

@_cdecl("FuzzPacketHeader_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv, fuzzOneInput)
}
