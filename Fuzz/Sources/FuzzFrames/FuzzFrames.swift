// libFuzzer target: Frame.decodeAll / Frame.decode on arbitrary packet payloads.
//
// Decoding must never trap. Every frame that decodes must re-encode (Frame.encode, both with
// and without lastInPacket) to exactly encodedLength bytes that decode back to an equal frame,
// and a whole decoded payload must re-encode to a payload that decodes to the same frames:
// a mismatch is a real encoder/decoder disagreement, so it traps.
import FuzzDriver
import QuiverCore
@_spi(Wire) import QuiverQUIC

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let payload = size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size))

    // Whole payloads, with the packet-type permission rules of each packet type.
    for packetType in PacketType.allCases {
        guard let frames = try? Frame.decodeAll(payload, packetType: packetType) else { continue }
        require(!frames.isEmpty, "decodeAll returned no frames for a non-empty payload")
        var w = ByteWriter()
        for (index, frame) in frames.enumerated() {
            require(frame.isAllowed(in: packetType), "decodeAll accepted \(frame.type) in \(packetType)")
            roundTrip(frame)
            frame.encode(into: &w, lastInPacket: index == frames.count - 1)
        }
        let again: [Frame]
        do {
            again = try Frame.decodeAll(w.bytes, packetType: packetType)
        } catch {
            fatalError("re-encoded payload does not decode (\(packetType)): \(error)\n  frames: \(frames)\n  bytes: \(hex(w.bytes))")
        }
        require(again == frames, "payload round trip differs (\(packetType)):\n  \(frames)\n  \(again)")
    }

    // Frame by frame, without permission checks, as far as the payload decodes.
    var reader = ByteReader(payload)
    while !reader.isAtEnd {
        let before = reader.remaining
        guard let frame = try? Frame.decode(from: &reader) else { break }
        require(reader.remaining < before, "decode consumed nothing")
        roundTrip(frame)
    }
    return 0
}

/// encode → decode must give the same frame, with and without the trailing-frame encoding.
private func roundTrip(_ frame: Frame) {
    for last in [false, true] {
        var w = ByteWriter()
        frame.encode(into: &w, lastInPacket: last)
        require(w.count == frame.encodedLength(lastInPacket: last),
                "encodedLength(lastInPacket: \(last)) = \(frame.encodedLength(lastInPacket: last)) but encode wrote \(w.count) bytes for \(frame)")
        var r = ByteReader(w.bytes)
        let again: Frame
        do {
            again = try Frame.decode(from: &r)
        } catch {
            fatalError("re-encoded frame does not decode (lastInPacket: \(last)): \(error)\n  frame: \(frame)\n  bytes: \(hex(w.bytes))")
        }
        require(r.isAtEnd, "re-encoded frame left \(r.remaining) bytes (lastInPacket: \(last)): \(frame)")
        require(again == frame, "frame round trip differs (lastInPacket: \(last)):\n  \(frame)\n  \(again)\n  bytes: \(hex(w.bytes))")
    }
}

private func hex(_ bytes: [UInt8]) -> String {
    bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
}

/// A precondition whose message survives -O (precondition's does not): prints and traps.
private func require(_ condition: Bool, _ message: @autoclosure () -> String = "", file: StaticString = #fileID, line: UInt = #line) {
    if !condition { fatalError(message(), file: file, line: line) }
}

@_cdecl("FuzzFrames_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv, fuzzOneInput)
}
