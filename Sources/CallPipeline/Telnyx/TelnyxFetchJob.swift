public import AsyncHTTPClient
public import CallAPI
public import CallJobs
public import CallStore
public import CallTelnyx
import Foundation
import Logging

/// A Telnyx recording's network stage, before its transcode: its call's facts (waiting, bounded,
/// for the call's events), its call log decided, its audio downloaded to the spool (a link that
/// expired or failed replaced by a fresh one from `GET /v2/recordings`, which also gives the
/// recording id when the webhook did not), then its transcode enqueued in the commit that records
/// all of it. Step-0 stub (WP-D replaces it).
public struct TelnyxFetchJobHandler: JobHandler {
    public static let kind: JobKind = "telnyx-fetch"
    public var kind: JobKind { Self.kind }

    public let settings: TelnyxSettings
    /// Lists recordings (fresh links, the recording id); nil without TELNYX_API_KEY.
    public let client: TelnyxClient?
    /// Downloads the (pre-signed) links.
    public let http: HTTPClient
    public let spool: Spool
    /// Jobs to enqueue with the download's commit (the transcode).
    public let followUp: @Sendable (String) -> [NewJob]

    public init(settings: TelnyxSettings, client: TelnyxClient?, http: HTTPClient, spool: Spool,
                followUp: @escaping @Sendable (String) -> [NewJob]) {
        self.settings = settings
        self.client = client
        self.http = http
        self.spool = spool
        self.followUp = followUp
    }

    /// At most one live per recording.
    public static func job(key: String) throws -> NewJob {
        try NewJob(queue: .fetch, kind: kind, arguments: RecordingJobArguments(key: key), uniqueKey: uniqueKey(key), priority: 2,
                   maxAttempts: 5)
    }

    /// What a call event wakes (``LedgerOp/wakeJobs(uniqueKeys:)``).
    public static func uniqueKey(_ key: String) -> String { "fetch:\(key)" }

    public func run(_ job: Job, context: JobContext) async throws {
        throw JobFailure(.permanent, code: "not_implemented", "telnyx fetch: not implemented (WP-D)")
    }
}
