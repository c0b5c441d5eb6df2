// buffer-bench: the evaluation issue 16 asked for before choosing the data path's byte buffer —
// SwiftNIO's `ByteBuffer` against what the QUIC data path uses (`[UInt8]` written through
// `ByteWriter`, read through `ByteReader`, slices as `ArraySlice`), on the data path's two
// operations:
//
//   encode  a 1-RTT packet into a reused buffer: first byte, 8-byte connection ID, 4-byte packet
//           number, a STREAM frame header (type, stream ID, offset, length varints), 1 100 bytes
//           of stream data copied from the send buffer, 16 bytes of room for the AEAD tag;
//   decode  the same packet: skip the header, read the frame header, take the data as a slice
//           (no copy) and append it to the stream's receive chunk (the one copy).
//
// Run: swift run -c release --package-path Benchmarks buffer-bench [iterations]
import NIOCore
import QuiverCore

let iterations = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 2_000_000 : 2_000_000
let payload = [UInt8]((0..<1100).map { UInt8(truncatingIfNeeded: $0) })
let connectionID: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 8]

/// Runs `body` `iterations` times; nanoseconds per run, best of three.
@MainActor func measure(_ name: String, _ body: (Int) -> Int) -> Double {
    var best = Double.infinity
    var sink = 0
    for _ in 0..<3 {
        let start = ContinuousClock.now
        for i in 0..<iterations { sink &+= body(i) }
        let elapsed = ContinuousClock.now - start
        let (seconds, attoseconds) = elapsed.components
        best = min(best, (Double(seconds) * 1e9 + Double(attoseconds) / 1e9) / Double(iterations))
    }
    print("\(name): \(fixed(best)) ns/packet (checksum \(sink & 0xff))")
    return best
}

func fixed(_ value: Double, digits: Int = 1) -> String {
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    return "\((value * scale).rounded() / scale)"
}

// MARK: - [UInt8] with ByteWriter / ByteReader

var writer = ByteWriter(capacity: 1500)
@MainActor func encodeArray(_ i: Int) -> Int {
    writer.bytes.removeAll(keepingCapacity: true)
    writer.writeUInt8(0x43)
    writer.writeBytes(connectionID)
    writer.writeUInt32(UInt32(truncatingIfNeeded: i))
    writer.writeVarInt(0x0e)
    writer.writeVarInt(4)
    writer.writeVarInt(UInt64(i) &* 1100)
    writer.writeVarInt(UInt64(payload.count))
    writer.writeBytes(payload[...])
    writer.writeZeros(16)
    return writer.count
}

_ = encodeArray(12_345)
let packetArray = writer.bytes
var chunk: [UInt8] = []
chunk.reserveCapacity(1 << 16)
@MainActor func decodeArray(_ i: Int) -> Int {
    if chunk.count > 60_000 { chunk.removeAll(keepingCapacity: true) }
    var reader = ByteReader(packetArray, in: 13..<(packetArray.count - 16))
    guard (try? reader.readVarInt()) == 0x0e, let id = try? reader.readVarInt(), let offset = try? reader.readVarInt(),
          let length = try? reader.readVarInt(), let data = try? reader.readSlice(Int(length))
    else { fatalError("decode") }
    chunk.append(contentsOf: data)
    return Int(id &+ offset) &+ chunk.count
}

// MARK: - NIOCore ByteBuffer

let allocator = ByteBufferAllocator()
var buffer = allocator.buffer(capacity: 1500)
@MainActor func encodeByteBuffer(_ i: Int) -> Int {
    buffer.clear()
    buffer.writeInteger(UInt8(0x43))
    buffer.writeBytes(connectionID)
    buffer.writeInteger(UInt32(truncatingIfNeeded: i))
    writeVarInt(0x0e, into: &buffer)
    writeVarInt(4, into: &buffer)
    writeVarInt(UInt64(i) &* 1100, into: &buffer)
    writeVarInt(UInt64(payload.count), into: &buffer)
    buffer.writeBytes(payload)
    buffer.writeRepeatingByte(0, count: 16)
    return buffer.readableBytes
}

/// QUIC's variable-length integer (RFC 9000 §16) on a ByteBuffer: NIOCore has none.
func writeVarInt(_ value: UInt64, into buffer: inout ByteBuffer) {
    switch value {
    case ..<(1 << 6): buffer.writeInteger(UInt8(value))
    case ..<(1 << 14): buffer.writeInteger(UInt16(value) | 0x4000)
    case ..<(1 << 30): buffer.writeInteger(UInt32(value) | 0x8000_0000)
    default: buffer.writeInteger(value | 0xc000_0000_0000_0000)
    }
}

func readVarInt(_ buffer: inout ByteBuffer) -> UInt64? {
    guard let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return nil }
    switch first >> 6 {
    case 0: return buffer.readInteger(as: UInt8.self).map { UInt64($0) }
    case 1: return buffer.readInteger(as: UInt16.self).map { UInt64($0 & 0x3fff) }
    case 2: return buffer.readInteger(as: UInt32.self).map { UInt64($0 & 0x3fff_ffff) }
    default: return buffer.readInteger(as: UInt64.self).map { $0 & 0x3fff_ffff_ffff_ffff }
    }
}

_ = encodeByteBuffer(12_345)
let packetBuffer = buffer
var chunkBuffer = allocator.buffer(capacity: 1 << 16)
@MainActor func decodeByteBuffer(_ i: Int) -> Int {
    if chunkBuffer.readableBytes > 60_000 { chunkBuffer.clear() }
    var reader = packetBuffer.getSlice(at: 13, length: packetBuffer.readableBytes - 13 - 16)!
    guard readVarInt(&reader) == 0x0e, let id = readVarInt(&reader), let offset = readVarInt(&reader),
          let length = readVarInt(&reader), var data = reader.readSlice(length: Int(length))
    else { fatalError("decode") }
    chunkBuffer.writeBuffer(&data)
    return Int(id &+ offset) &+ chunkBuffer.readableBytes
}

precondition(packetArray == Array(packetBuffer.readableBytesView), "the two encoders disagree")
print("\(iterations) packets of \(packetArray.count) bytes")
let encodeA = measure("encode, [UInt8] + ByteWriter", encodeArray)
let encodeB = measure("encode, NIOCore ByteBuffer  ", encodeByteBuffer)
let decodeA = measure("decode, [UInt8] + ByteReader", decodeArray)
let decodeB = measure("decode, NIOCore ByteBuffer  ", decodeByteBuffer)
print("ByteBuffer / [UInt8]: encode \(fixed(encodeB / encodeA, digits: 2))×, decode \(fixed(decodeB / decodeA, digits: 2))× the time")
