import Foundation

/// Where the sandbox keeps files: the state snapshot, uploaded recordings, and uploads in flight.
struct SandboxFiles: Sendable {
    /// The state directory, or a temporary directory in memory mode.
    let root: String
    /// Whether `root` is the user's state directory (snapshot written) or a temporary one.
    let persistent: Bool

    var stateFile: String { root + "/sandbox-state.json" }
    var recordings: String { root + "/recordings" }
    var uploads: String { root + "/uploads" }
    /// Held exclusively by the sandbox that serves this directory (``SandboxClaim``).
    var serveLock: String { root + "/serve.lock" }
    /// Held shared by each run that uses this directory's sandbox (``SandboxUse``).
    var useLock: String { root + "/use.lock" }
    /// The ``SandboxAddress`` of the sandbox serving this directory.
    var addressFile: String { root + "/serving.json" }

    func recordingPath(_ callLogId: String) -> String { recordings + "/" + callLogId + ".mp3" }

    /// A new path for an upload in flight.
    func newUploadPath() -> String { uploads + "/" + UUID().uuidString + ".part" }

    static func temporary() -> SandboxFiles {
        SandboxFiles(root: NSTemporaryDirectory() + "callrec-sandbox-" + UUID().uuidString, persistent: false)
    }

    /// Creates the directories, and removes uploads left over from a crash.
    func prepare() throws {
        let fm = FileManager.default
        do {
            try fm.createDirectory(atPath: recordings, withIntermediateDirectories: true)
            try? fm.removeItem(atPath: uploads)
            try fm.createDirectory(atPath: uploads, withIntermediateDirectories: true)
        } catch {
            throw SandboxError(.stateUnreadable, "cannot create the sandbox directories under \(root): \(error.localizedDescription)")
        }
    }
}
