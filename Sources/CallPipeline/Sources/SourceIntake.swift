public import CallSources
public import CallStore
import Foundation
public import Logging

/// One PBX source's way into the ledger: its CDR files read in, and each recording file taken
/// once (registered with its transcode job, or recorded as skipped with its reason), identified by
/// the PBX's call id rather than its bytes. `upload`/`enqueue DIR --source …` and the watching
/// worker share it.
public struct SourceIntake: Sendable {
    public let settings: SourceSettings
    public let store: any CallStore
    public let settle: Settle
    public let fingerprints: Fingerprints?
    public let logger: Logger

    public init(settings: SourceSettings, store: any CallStore, settle: Settle = Settle(), fingerprints: Fingerprints? = nil,
                logger: Logger) {
        self.settings = settings
        self.store = store
        self.settle = settle
        self.fingerprints = fingerprints
        self.logger = logger
    }

    /// Reads the new rows of every CDR file and wakes the recordings that waited for them.
    /// Returns how many rows were new.
    public func ingestCDRs() async throws -> Int {
        0  // Step-0 stub (WP3 replaces it).
    }

    /// Every file under the root, one directory at a time. Files the ledger knows unchanged are
    /// neither opened nor reported unless `reportKnown` (one-shot `upload` lists every file).
    public func scan(reportKnown: Bool) async throws -> [FileReport] {
        []  // Step-0 stub (WP3 replaces it).
    }

    /// The files of one directory (absolute) the ledger does not know as they are.
    public func scan(directory: String, reportKnown: Bool) async throws -> [FileReport] {
        []  // Step-0 stub (WP3 replaces it).
    }

    /// One file (absolute path), as a watcher saw it close or arrive.
    public func take(path: String) async -> FileReport {
        .failed(path, code: "not_implemented", "\(path): not implemented yet")  // Step-0 stub (WP3 replaces it).
    }
}
