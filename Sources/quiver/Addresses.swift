import Foundation

/// Parsing of the ports, hosts and URLs the commands take. Nothing here traps: every input
/// gives a value or a ``CommandError``.
enum Addresses {
    /// A port number from text: 1 through 65535 (`allowZero`: 0 too, for "any free port").
    static func port(_ text: String, allowZero: Bool = false, what: String = "port") throws(CommandError) -> UInt16 {
        guard let value = Int(text.trimmingCharacters(in: .whitespaces)) else { throw CommandError("\(what) '\(text)' is not a number") }
        return try port(value, allowZero: allowZero, what: what)
    }

    /// A port number from an integer, checked to be 1 through 65535 (or 0 with `allowZero`).
    static func port(_ value: Int, allowZero: Bool = false, what: String = "port") throws(CommandError) -> UInt16 {
        guard value <= 65_535, value >= (allowZero ? 0 : 1), let port = UInt16(exactly: value) else {
            throw CommandError("\(what) \(value) is out of range (\(allowZero ? 0 : 1)–65535)")
        }
        return port
    }

    /// `HOST:PORT` (`[IPv6]:PORT` for IPv6 addresses) split into a host without brackets and a port.
    static func hostPort(_ target: String) throws(CommandError) -> (host: String, port: UInt16) {
        let host: Substring
        let portText: Substring
        if target.hasPrefix("[") {
            guard let close = target.firstIndex(of: "]"), target[target.index(after: close)...].hasPrefix(":") else {
                throw CommandError("'\(target)' is not HOST:PORT ([IPv6 address]:PORT for IPv6)")
            }
            host = target[target.index(after: target.startIndex)..<close]
            portText = target[target.index(close, offsetBy: 2)...]
        } else {
            guard let colon = target.lastIndex(of: ":") else { throw CommandError("'\(target)' is not HOST:PORT (the port is missing)") }
            host = target[..<colon]
            portText = target[target.index(after: colon)...]
            guard !host.contains(":") else { throw CommandError("'\(target)' is not HOST:PORT: write an IPv6 address in brackets, [::1]:4433") }
        }
        guard !host.isEmpty else { throw CommandError("'\(target)' is not HOST:PORT (the host is missing)") }
        guard !portText.isEmpty else { throw CommandError("'\(target)' is not HOST:PORT (the port is missing)") }
        return (String(host), try port(String(portText)))
    }

    /// A URL `quiver get` can fetch: `https://host[:port]/path`.
    struct FetchURL: Equatable {
        /// The host without brackets (`::1` for `https://[::1]/`).
        var host: String
        var port: UInt16
        /// The `:authority` to send: the URL's host (bracketed for IPv6) and its port if given.
        var authority: String
        /// The request path with its query (`/` when empty), percent-encoded as given.
        var path: String
    }

    /// Parses an https URL for `quiver get`. The authority is checked here (URLComponents
    /// keeps a port of any size, and drops one too large for an `Int` without a word).
    static func fetchURL(_ text: String) throws(CommandError) -> FetchURL {
        guard let url = URLComponents(string: text) else { throw CommandError("not a URL: \(text)") }
        guard url.scheme?.lowercased() == "https" else { throw CommandError("not an https URL: \(text)") }
        // The authority as typed: after "https://", up to the path, query or fragment.
        let afterScheme = text[text.index(text.startIndex, offsetBy: min(text.count, "https://".count))...]
        let authority = afterScheme.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        guard !authority.contains("@") else { throw CommandError("user names in URLs are not supported: \(text)") }
        let rawHost: Substring
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw CommandError("unclosed [ in \(text)") }
            rawHost = authority[...close]
            let rest = authority[authority.index(after: close)...]
            if !rest.isEmpty {
                guard rest.hasPrefix(":") else { throw CommandError("not HOST:PORT after [\(rawHost)] in \(text)") }
                portText = rest.dropFirst()
            }
        } else if let colon = authority.firstIndex(of: ":") {
            rawHost = authority[..<colon]
            portText = authority[authority.index(after: colon)...]
        } else {
            rawHost = authority
        }
        guard rawHost.count > (rawHost.hasPrefix("[") ? 2 : 0) else { throw CommandError("no host in \(text)") }
        var port: UInt16 = 443
        if let portText {
            guard !portText.isEmpty, portText.allSatisfy(\.isASCII), portText.allSatisfy(\.isNumber) else {
                throw CommandError("port '\(portText)' in \(text) is not a number")
            }
            guard let value = UInt16(portText), value != 0 else { throw CommandError("port \(portText) in \(text) is out of range (1–65535)") }
            port = value
        }
        let host = rawHost.hasPrefix("[") ? String(rawHost.dropFirst().dropLast()) : String(rawHost)
        let path = (url.percentEncodedPath.isEmpty ? "/" : url.percentEncodedPath) + (url.percentEncodedQuery.map { "?\($0)" } ?? "")
        return FetchURL(host: host, port: port, authority: String(authority), path: path)
    }
}
