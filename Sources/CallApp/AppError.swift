/// A usage or configuration mistake found while composing a command (a database URL that is no
/// PostgreSQL URL, a missing credential, a step to skip that does not exist): the CLI says
/// `message` and exits 2.
public struct AppError: Error, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable {
        /// Usage or configuration (exit 2).
        case usage
    }

    public let code: Code
    public let message: String

    public init(_ code: Code = .usage, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
