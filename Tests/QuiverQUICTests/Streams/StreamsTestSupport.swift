import QuiverCore
import Testing

@_spi(Wire) @testable import QuiverQUIC

/// The namespace of the stream tests (`swift test --filter Streams`).
@Suite enum StreamsTests {}

/// Runs `body` and returns the transport error code it threw, or nil when it succeeded.
func transportError(_ body: () throws -> Void) -> TransportErrorCode? {
    do {
        try body()
        return nil
    } catch let error as QUICError {
        return error.code
    } catch {
        Issue.record("unexpected error \(error)")
        return nil
    }
}

/// Runs `body` and returns the stream error it threw, or nil when it succeeded.
func streamError(_ body: () throws -> Void) -> StreamError? {
    do {
        try body()
        return nil
    } catch let error as StreamError {
        return error
    } catch {
        Issue.record("unexpected error \(error)")
        return nil
    }
}

/// Transport parameters with the stream-related limits set.
func streamParameters(maxData: UInt64 = 1 << 20, bidiLocal: UInt64 = 1 << 16, bidiRemote: UInt64 = 1 << 16,
                      uni: UInt64 = 1 << 16, maxStreamsBidi: UInt64 = 100, maxStreamsUni: UInt64 = 100) -> TransportParameters {
    var parameters = TransportParameters()
    parameters.initialMaxData = maxData
    parameters.initialMaxStreamDataBidiLocal = bidiLocal
    parameters.initialMaxStreamDataBidiRemote = bidiRemote
    parameters.initialMaxStreamDataUni = uni
    parameters.initialMaxStreamsBidi = maxStreamsBidi
    parameters.initialMaxStreamsUni = maxStreamsUni
    return parameters
}

extension SeededGenerator {
    /// `count` random bytes, generated a word at a time (fast enough for megabytes).
    mutating func fastBytes(_ count: Int) -> [UInt8] {
        var result = [UInt8](repeating: 0, count: count)
        var index = 0
        while index < count {
            var word = next()
            for _ in 0..<8 where index < count {
                result[index] = UInt8(truncatingIfNeeded: word)
                word >>= 8
                index += 1
            }
        }
        return result
    }
}

/// The virtual clock's start for stream tests.
let epoch = Instant(nanoseconds: 1_000_000_000)
