#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where a connection's qlog goes (draft-ietf-quic-qlog-main-schema, draft-ietf-quic-qlog-quic-events):
/// set ``QUICConfiguration/qlog`` to log every connection made with that configuration.
///
/// A connection writes one trace in the JSON Text Sequences serialization (RFC 7464,
/// `application/qlog+json-seq`): a header record naming the file schema, the vantage point and
/// the event schema, then one record per event, each prefixed by the record separator 0x1E and
/// ended by a newline. Events are buffered per connection and handed to the sink in batches:
/// when 64 KiB have gathered, at the end of an I/O round at most once a second, and when the
/// connection closes or is released.
public enum QLogDestination: Sendable {
    /// One file per connection in this directory (which must exist), named after the original
    /// destination connection ID and the vantage point, `<odcid hex>_<client|server>.sqlog`
    /// (main schema §12.1, QUIC events §1.1). The directory is the one `QLOGDIR` names in
    /// the convention of ngtcp2, quiche and aioquic. Files are readable by their owner only.
    case directory(String)
    /// A sink made for each connection when its first records are handed over; returning
    /// `nil` leaves that connection unlogged.
    case custom(@Sendable (QLogTrace) -> (any QLogSink)?)

    /// The destination the `QLOGDIR` environment variable names, or `nil` when it is unset or
    /// empty.
    public static var environment: QLogDestination? {
        guard let value = getenv("QLOGDIR"), value.pointee != 0 else { return nil }
        return .directory(String(cString: value))
    }

    /// The sink for one connection's trace, or `nil` when none can be made (a directory that
    /// cannot take the file: logging is then off for that connection). Made at the trace's
    /// first batch, so a server connection whose first datagram does not decrypt leaves no file.
    func makeSink(for trace: QLogTrace) -> (any QLogSink)? {
        switch self {
        case .directory(let path):
            let separator = path.hasSuffix("/") ? "" : "/"
            return QLogFileSink(path: path + separator + trace.fileName)
        case .custom(let factory):
            return factory(trace)
        }
    }
}

/// The connection a qlog trace describes.
public struct QLogTrace: Sendable, Hashable {
    /// The vantage point: the endpoint that logs.
    public var role: Role
    /// The first Destination Connection ID the client chose, which names the trace (its
    /// `group_id`) because it stays the same for the connection's life.
    public var originalDestinationConnectionID: ConnectionID

    /// `<odcid hex>_<client|server>.sqlog`, the file name a directory destination uses.
    public var fileName: String {
        let id = originalDestinationConnectionID.withUnsafeBytes { bytes in
            bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
        }
        return "\(id)_\(role == .client ? "client" : "server").sqlog"
    }
}

/// Receives one connection's qlog records.
///
/// A sink is used by the thread that drives its connection, one call at a time; it need not be
/// thread-safe. ``write(_:)`` should not block for long: it is called on the connection's
/// event loop.
public protocol QLogSink: AnyObject {
    /// Takes a batch of complete JSON-SEQ records (each starting with 0x1E and ending with a
    /// newline).
    func write(_ records: [UInt8])
    /// The connection is gone: nothing more will be written.
    func close()
}

/// A ``QLogSink`` writing to a file, created (or truncated) with owner-only permissions.
public final class QLogFileSink: QLogSink {
    private var descriptor: Int32

    /// Opens `path` for writing; `nil` when it cannot be created.
    public init?(path: String) {
        descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { return nil }
    }

    /// Appends the records to the file; a failed write (a full disk) loses the rest of the
    /// trace, never blocks or fails the connection.
    public func write(_ records: [UInt8]) {
        guard descriptor >= 0 else { return }
        records.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                #if canImport(Glibc)
                let written = Glibc.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                #else
                let written = Darwin.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                #endif
                if written > 0 {
                    offset += written
                } else if written < 0, errno == EINTR {
                    continue
                } else {
                    return  // a full disk or a closed file: the rest of the trace is lost
                }
            }
        }
    }

    /// Closes the file.
    public func close() {
        guard descriptor >= 0 else { return }
        #if canImport(Glibc)
        _ = Glibc.close(descriptor)
        #else
        _ = Darwin.close(descriptor)
        #endif
        descriptor = -1
    }

    deinit { close() }
}
