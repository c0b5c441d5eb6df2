#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Quiver
import QuiverCore
import QuiverTLS

/// `quiver serve --secrets FILE`: the keys that the servers of one service share, so that any of
/// them — another host behind a load balancer, or this one restarted — accepts what another
/// issued: a Retry or NEW_TOKEN token (`token`), a TLS session ticket (`sessionTicket`, so a
/// client resumes at any host), a DTLS cookie (`dtlsCookie`), and the stateless reset tokens
/// (`statelessReset`: a host that never knew a connection tells its client at once that it is
/// gone). A JSON object of 32-byte keys in hex; `quiver secrets --out FILE` writes one. The file
/// must be readable by its owner only, as a private key.
struct SharedSecrets: Sendable {
    static let names = ["token", "statelessReset", "sessionTicket", "dtlsCookie"]
    static let keyLength = 32

    var token: [UInt8]?
    var statelessReset: [UInt8]?
    var sessionTicket: [UInt8]?
    var dtlsCookie: [UInt8]?

    /// Reads `path`. Every problem is one line: a file others may read, not JSON, an unknown
    /// name (a typo would silently leave a key unshared), a value that is not 32 bytes of hex.
    static func load(_ path: String) throws(CommandError) -> SharedSecrets {
        var status = stat()
        guard stat(path, &status) == 0 else { throw CommandError("--secrets \(path): \(String(cString: strerror(errno)))") }
        guard status.st_mode & 0o077 == 0 else {
            throw CommandError("--secrets \(path): readable by others (mode \(String(status.st_mode & 0o777, radix: 8))): chmod 600 it")
        }
        guard let data = FileManager.default.contents(atPath: path),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw CommandError("--secrets \(path): not a JSON object")
        }
        var secrets = SharedSecrets()
        for (name, value) in object {
            guard names.contains(name) else { throw CommandError("--secrets \(path): unknown key \"\(name)\" (known: \(names.joined(separator: ", ")))") }
            guard let text = value as? String, let bytes = hexBytes(text), bytes.count == keyLength else {
                throw CommandError("--secrets \(path): \"\(name)\" must be \(keyLength) bytes in hex (\(2 * keyLength) digits)")
            }
            switch name {
            case "token": secrets.token = bytes
            case "statelessReset": secrets.statelessReset = bytes
            case "sessionTicket": secrets.sessionTicket = bytes
            default: secrets.dtlsCookie = bytes
            }
        }
        return secrets
    }

    /// A new file's contents: every key, random.
    static func generate(random: RandomSource = .system) -> [UInt8] {
        let fields = names.map { "  \"\($0)\": \"\(random.bytes(keyLength).map { String(format: "%02x", $0) }.joined())\"" }
        return Array(("{\n" + fields.joined(separator: ",\n") + "\n}\n").utf8)
    }

    /// The listener keys: tokens, stateless resets, DTLS cookies.
    func apply(to options: inout Listener.Options) {
        if let token { options.tokenSecret = token }
        if let statelessReset { options.statelessResetKey = statelessReset }
        if let dtlsCookie { options.dtlsCookieSecret = dtlsCookie }
    }

    /// The TLS key: session tickets (rotated hourly from the shared secret, the last three
    /// epochs accepted, so the hosts agree on the epoch by their clocks).
    func apply(to tls: inout TLSConfiguration) {
        if let sessionTicket { tls.sessionTicketKeys = SessionTicketKeys(secret: sessionTicket) }
    }

    private static func hexBytes(_ text: String) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        for index in stride(from: 0, to: digits.count, by: 2) {
            guard let high = hexValue(digits[index]), let low = hexValue(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
        }
        return bytes
    }

    private static func hexValue(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): digit - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
