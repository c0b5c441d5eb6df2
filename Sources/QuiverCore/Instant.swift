#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A point on a monotonic clock, in nanoseconds.
///
/// The sans-I/O engines never read a clock: callers pass "now" in. Tests use instants on a
/// virtual clock (``init(nanoseconds:)``); real drivers use ``now()``.
public struct Instant: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// Nanoseconds since an arbitrary, fixed origin.
    public var nanoseconds: UInt64

    /// Creates an instant `nanoseconds` after the clock's origin.
    @inlinable public init(nanoseconds: UInt64) { self.nanoseconds = nanoseconds }

    /// The current time on the system's monotonic clock (`CLOCK_MONOTONIC`).
    public static func now() -> Instant {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Instant(nanoseconds: UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec))
    }

    @inlinable public static func < (a: Instant, b: Instant) -> Bool { a.nanoseconds < b.nanoseconds }

    /// The instant `d` later (saturating).
    @inlinable public static func + (a: Instant, d: Duration) -> Instant {
        let ns = d.nanosecondsClamped
        return ns >= 0
            ? Instant(nanoseconds: a.nanoseconds.addingReportingOverflow(UInt64(ns)).overflow ? .max : a.nanoseconds + UInt64(ns))
            : Instant(nanoseconds: a.nanoseconds >= UInt64(-ns) ? a.nanoseconds - UInt64(-ns) : 0)
    }

    /// The duration from `b` to `a` (negative when `a` is earlier).
    @inlinable public static func - (a: Instant, b: Instant) -> Duration {
        a >= b ? .nanoseconds(Int64(clamping: a.nanoseconds - b.nanoseconds))
            : .nanoseconds(-Int64(clamping: b.nanoseconds - a.nanoseconds))
    }

    public var description: String { "Instant(\(nanoseconds) ns)" }
}

extension Duration {
    /// The duration in whole nanoseconds (truncated toward zero), clamped to the range of
    /// `Int64`. A duration under about 9.2 s in either direction — every RTT, PTO and pacing
    /// delay — takes one 64-bit division; `components` divides 128-bit integers twice.
    @inlinable public var nanosecondsClamped: Int64 {
        let attoseconds = self.attoseconds
        if let small = Int64(exactly: attoseconds) { return small / 1_000_000_000 }
        return Int64(clamping: attoseconds / 1_000_000_000)
    }
}

/// The wall clock, in seconds since the Unix epoch — used only where a protocol needs real
/// time (certificate validity, session-ticket ages) and always injectable in tests.
public struct WallClock: Sendable {
    /// Returns the current time in milliseconds since the Unix epoch.
    public let millisecondsSinceEpoch: @Sendable () -> UInt64

    /// A clock reading the system's real time.
    public static let system = WallClock {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return UInt64(ts.tv_sec) * 1000 + UInt64(ts.tv_nsec) / 1_000_000
    }

    /// A clock that always answers `milliseconds` (for tests).
    public static func fixed(millisecondsSinceEpoch milliseconds: UInt64) -> WallClock {
        WallClock { milliseconds }
    }

    /// Creates a clock from a function.
    public init(millisecondsSinceEpoch: @escaping @Sendable () -> UInt64) {
        self.millisecondsSinceEpoch = millisecondsSinceEpoch
    }
}
