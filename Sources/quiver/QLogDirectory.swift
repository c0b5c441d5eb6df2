import Foundation

/// The qlog directory of the QUIC commands: `--qlog DIR`, or else the `QLOGDIR` environment
/// variable (draft-ietf-quic-qlog-main-schema §12.1, the convention of ngtcp2, quiche and
/// aioquic). Each connection writes `<original destination connection ID>_<client|server>.sqlog`
/// there.
enum QLogDirectory {
    /// The directory to log into, created when missing; `nil` when neither the option nor
    /// `QLOGDIR` names one.
    static func resolve(_ option: String?) throws(CommandError) -> String? {
        let environment = ProcessInfo.processInfo.environment["QLOGDIR"].flatMap { $0.isEmpty ? nil : $0 }
        guard let path = option ?? environment else { return nil }
        let what = option != nil ? "--qlog \(path)" : "QLOGDIR=\(path)"
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw CommandError("\(what): not a directory") }
        } else {
            do {
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            } catch {
                throw CommandError("\(what): cannot create the directory")
            }
        }
        guard access(path, W_OK | X_OK) == 0 else { throw CommandError("\(what): not writable") }
        return path
    }
}
