/// A mistake in what the user typed or a resource the command cannot use (a port in use, a
/// missing directory): printed as one line, `Error: <message>`, with exit status 1 — no usage
/// text, no stack trace. Every address, port and URL problem of the commands is one of these.
struct CommandError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}
