/// Why the sandbox could not be configured, started or could not keep its state.
///
/// Never carries a credential: messages name files and settings, not tokens.
public struct SandboxError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A stable, machine-readable code. New codes are static members, never enum cases.
    public struct Code: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }

        /// A `--faults` specification that does not parse.
        public static let invalidFaultSpecification = Code(rawValue: "invalid_fault_specification")
        /// A setting out of range (port, burst, budget …).
        public static let invalidConfiguration = Code(rawValue: "invalid_configuration")
        /// The state directory or its snapshot could not be read.
        public static let stateUnreadable = Code(rawValue: "state_unreadable")
        /// Another sandbox serves the state directory (the message names its process and address).
        public static let stateInUse = Code(rawValue: "state_in_use")
        /// A CRM seed (`--seed FILE`, `POST /_sandbox/crm`) that does not parse or check; the
        /// message names the field (`persons[3].phones[0].value: expected a string`).
        public static let invalidSeed = Code(rawValue: "invalid_seed")
        /// The server stopped (or failed to bind) before it listened.
        public static let notRunning = Code(rawValue: "not_running")

        public var description: String { rawValue }
    }

    public let code: Code
    /// What went wrong, for a person.
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}
