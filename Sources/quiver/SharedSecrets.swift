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
///
/// It may also hold the QUIC-LB configuration of the hosts' load balancer (`quicLB`, see
/// ``QUICLBSettings``): the file is shared, so each host's server ID comes from its own command
/// line (`quiver serve --server-id HEX`), and ``serverID(_:)`` pairs the two.
struct SharedSecrets: Sendable {
    static let names = ["token", "statelessReset", "sessionTicket", "dtlsCookie"]
    static let keyLength = 32

    var token: [UInt8]?
    var statelessReset: [UInt8]?
    var sessionTicket: [UInt8]?
    var dtlsCookie: [UInt8]?
    /// The shared QUIC-LB configuration, without a server ID.
    var quicLB: QUICLBSettings?
    /// This host's QUIC-LB configuration: ``quicLB`` with the server ID of ``serverID(_:)``.
    private(set) var listenerQUICLB: Listener.QUICLB?

    /// `"quicLB": {"configID": 0, "serverIDLength": 1, "nonceLength": 6, "key": "…",
    /// "encodesLength": true}`: the draft's configuration (§5.3) that the balancer and every host
    /// share; `key` (16 bytes in hex, for encrypted connection IDs) and `encodesLength` (default
    /// true) may be left out.
    struct QUICLBSettings: Sendable {
        static let names = ["configID", "serverIDLength", "nonceLength", "key", "encodesLength"]
        var configID: UInt8
        var serverIDLength: Int
        var nonceLength: Int
        var key: [UInt8]?
        var encodesLength: Bool

        static func parse(_ value: Any, path: String) throws(CommandError) -> QUICLBSettings {
            let prefix = "--secrets \(path): \"quicLB\""
            guard let object = value as? [String: Any] else { throw CommandError("\(prefix) must be an object") }
            for name in object.keys where !names.contains(name) {
                throw CommandError("\(prefix): unknown key \"\(name)\" (known: \(names.joined(separator: ", ")))")
            }
            func integer(_ name: String) throws(CommandError) -> Int {
                guard let number = object[name] as? Int else { throw CommandError("\(prefix): \"\(name)\" must be a number") }
                return number
            }
            let configID = try integer("configID")
            guard (0...6).contains(configID) else { throw CommandError("\(prefix): \"configID\" must be 0 to 6") }
            var key: [UInt8]?
            if let value = object["key"] {
                guard let text = value as? String, let bytes = hexBytes(text), bytes.count == 16 else {
                    throw CommandError("\(prefix): \"key\" must be 16 bytes in hex (32 digits)")
                }
                key = bytes
            }
            var encodesLength = true
            if let value = object["encodesLength"] {
                guard let flag = value as? Bool else { throw CommandError("\(prefix): \"encodesLength\" must be true or false") }
                encodesLength = flag
            }
            let settings = QUICLBSettings(configID: UInt8(configID), serverIDLength: try integer("serverIDLength"),
                                          nonceLength: try integer("nonceLength"), key: key, encodesLength: encodesLength)
            try settings.validate(prefix: prefix)
            return settings
        }

        /// Checks the lengths now, with a stand-in server ID of the configured length; `prefix`
        /// begins the one-line error.
        func validate(prefix: String) throws(CommandError) {
            if serverIDLength < 1 { throw CommandError("\(prefix): a server ID has at least 1 octet") }
            do {
                _ = try listener(serverID: [UInt8](repeating: 0, count: serverIDLength))
            } catch {
                throw CommandError("\(prefix): \(error.reason)")
            }
        }

        /// The `"quicLB"` entry of a file, as ``parse(_:path:)`` reads it.
        var json: String {
            var fields = ["\"configID\": \(configID)", "\"serverIDLength\": \(serverIDLength)", "\"nonceLength\": \(nonceLength)"]
            if let key { fields.append("\"key\": \"\(key.map { String(format: "%02x", $0) }.joined())\"") }
            if !encodesLength { fields.append("\"encodesLength\": false") }
            return "{" + fields.joined(separator: ", ") + "}"
        }

        func listener(serverID: [UInt8]) throws(QuiverError) -> Listener.QUICLB {
            try Listener.QUICLB(configID: configID, serverID: serverID, nonceLength: nonceLength, key: key, encodesLength: encodesLength)
        }
    }

    /// Pairs the file's QUIC-LB configuration with this host's `--server-id` (hex), which must
    /// come together: one line says which is missing or how the ID does not fit, or why
    /// `loops` event loops cannot share it.
    mutating func serverID(_ hex: String?, loops: Int, path: String) throws(CommandError) {
        switch (quicLB, hex) {
        case (nil, nil): return
        case (nil, _?): throw CommandError("--server-id names this host in a QUIC-LB configuration: add \"quicLB\" to --secrets \(path)")
        case (let settings?, nil):
            throw CommandError("--secrets \(path) has a QUIC-LB configuration: give this host's --server-id (\(settings.serverIDLength) byte(s) in hex)")
        case (let settings?, let hex?):
            guard let serverID = Self.hexBytes(hex), !serverID.isEmpty else { throw CommandError("--server-id \(hex): not hex") }
            guard serverID.count == settings.serverIDLength else {
                throw CommandError("--server-id \(hex): \(serverID.count) byte(s), but the QUIC-LB configuration of --secrets \(path) has \(settings.serverIDLength)")
            }
            let configuration: Listener.QUICLB
            do {
                configuration = try settings.listener(serverID: serverID)
            } catch {
                throw CommandError("--server-id \(hex): \(error.reason)")
            }
            if let refusal = configuration.refusal(workers: loops) { throw CommandError("--loops \(loops): \(refusal)") }
            listenerQUICLB = configuration
        }
    }

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
            if name == "quicLB" {
                secrets.quicLB = try QUICLBSettings.parse(value, path: path)
                continue
            }
            guard names.contains(name) else { throw CommandError("--secrets \(path): unknown key \"\(name)\" (known: \((names + ["quicLB"]).joined(separator: ", ")))") }
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

    /// A new file's contents: every key, random, and the QUIC-LB configuration if given.
    static func generate(quicLB: QUICLBSettings? = nil, random: RandomSource = .system) -> [UInt8] {
        var fields = names.map { "  \"\($0)\": \"\(random.bytes(keyLength).map { String(format: "%02x", $0) }.joined())\"" }
        if let quicLB { fields.append("  \"quicLB\": \(quicLB.json)") }
        return Array(("{\n" + fields.joined(separator: ",\n") + "\n}\n").utf8)
    }

    /// The listener keys: tokens, stateless resets, DTLS cookies; and this host's QUIC-LB
    /// configuration.
    func apply(to options: inout Listener.Options) {
        if let listenerQUICLB { options.quicLB = listenerQUICLB }
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
