public import CallAPI
import Foundation

/// What a cascade delete sends: one call per target, each idempotent (a target that is gone
/// already answers with its "gone" status, which counts as done). The live implementation is
/// ``LiveDeleteAPIs``; tests substitute fakes to inject faults without waiting for retries.
///
/// Every method throws ``APIError``: `configuration` when this process has no credentials for
/// that API, otherwise the client's classification.
public protocol DeleteAPIs: Sendable {
    /// `DELETE /v1/callLogs/{id}`: the HTTP status taken as the result (200 deleted; 404/410 gone).
    func deleteCallLog(id: String) async throws -> DeleteResult
    /// `DELETE /v2/recordings/{id}` (200 deleted; 404 gone).
    func deleteTelnyxRecording(id: String) async throws -> DeleteResult
    /// `DELETE …/phoneCallEvents/{type}/{id}`: only ever a complete address (200 with ids; 204 gone).
    func deleteVoipNowEvent(_ address: VoipNowEventAddress) async throws -> DeleteResult
    /// The ids of the call logs whose note or subject carries `marker` (a create whose answer was
    /// lost): a full listing, 20 tokens a page.
    func callLogIDs(carrying markers: Set<String>) async throws -> [String: [String]]
}

/// The answer to one delete.
public struct DeleteResult: Sendable, Hashable {
    /// The HTTP status the result stands for (200/204 deleted, 404/410 already gone).
    public var httpStatus: Int
    public var detail: String

    public init(httpStatus: Int, detail: String) {
        self.httpStatus = httpStatus
        self.detail = detail
    }
}

/// What a reconcile pass reads from the CRM (Pipedrive's call logs).
public protocol CallLogDirectory: Sendable {
    /// One page of `GET /v1/callLogs` (20 tokens whatever its size).
    func callLogPage(start: Int, limit: Int) async throws -> CallLogIDPage
    /// `GET /v1/callLogs/{id}` (2 tokens): ``CallLogLookup/exists`` on 200,
    /// ``CallLogLookup/gone(status:)`` only on a definite 404 or 410; anything else throws.
    func lookUp(callLogID: String) async throws -> CallLogLookup
}

public struct CallLogIDPage: Sendable, Hashable {
    public var ids: [String]
    public var moreItems: Bool
    public var nextStart: Int?

    public init(ids: [String], moreItems: Bool, nextStart: Int?) {
        self.ids = ids
        self.moreItems = moreItems
        self.nextStart = nextStart
    }
}

public enum CallLogLookup: Sendable, Hashable {
    case exists
    case gone(status: Int)
}

/// ``DeleteAPIs`` and ``CallLogDirectory`` over the real clients; an API without credentials is
/// nil, and a target that needs it fails with a `configuration` error naming the variables.
public struct LiveDeleteAPIs: DeleteAPIs, CallLogDirectory {
    public let pipedrive: PipedriveClient?
    public let telnyx: TelnyxClient?
    public let voipnow: VoipNowClient?

    public init(pipedrive: PipedriveClient?, telnyx: TelnyxClient?, voipnow: VoipNowClient?) {
        self.pipedrive = pipedrive
        self.telnyx = telnyx
        self.voipnow = voipnow
    }

    private func pipedriveClient() throws -> PipedriveClient {
        guard let pipedrive else { throw APIError(.configuration, api: .pipedrive, "no Pipedrive credentials: set PIPEDRIVE_API_TOKEN") }
        return pipedrive
    }

    public func deleteCallLog(id: String) async throws -> DeleteResult {
        switch try await pipedriveClient().deleteCallLog(id: id) {
        case .deleted: DeleteResult(httpStatus: 200, detail: "deleted")
        // The client folds 404 and 410 into one outcome; 404 is recorded for both.
        case .alreadyGone: DeleteResult(httpStatus: 404, detail: "already gone (404/410)")
        }
    }

    public func deleteTelnyxRecording(id: String) async throws -> DeleteResult {
        guard let telnyx else { throw APIError(.configuration, api: .telnyx, "no Telnyx credentials: set TELNYX_API_KEY") }
        return switch try await telnyx.deleteRecording(id: id) {
        case .deleted: DeleteResult(httpStatus: 200, detail: "deleted")
        case .alreadyGone: DeleteResult(httpStatus: 404, detail: "already gone (404)")
        }
    }

    public func deleteVoipNowEvent(_ address: VoipNowEventAddress) async throws -> DeleteResult {
        guard let voipnow else {
            throw APIError(.configuration, api: .voipnow, "no VoipNow credentials: set VOIPNOW_API_URL and VOIPNOW_ACCESS_TOKEN")
        }
        switch try await voipnow.deleteEvent(address) {
        case .deleted(let ids):
            // A complete address names one event; anything else would be a widened delete.
            if !ids.isEmpty, ids != [address.eventId] {
                return DeleteResult(httpStatus: 200, detail: "deleted; the server named ids \(ids) for event \(address.eventId)")
            }
            return DeleteResult(httpStatus: 200, detail: "deleted event \(address.eventId)")
        case .alreadyGone:
            return DeleteResult(httpStatus: 204, detail: "already gone (204, or the id is no longer valid)")
        }
    }

    public func callLogIDs(carrying markers: Set<String>) async throws -> [String: [String]] {
        guard !markers.isEmpty else { return [:] }
        var found: [String: [String]] = [:]
        _ = try await pipedriveClient().allCallLogs { page in
            for log in page.items {
                for marker in markers where (log.note ?? "").contains(marker) || (log.subject ?? "").contains(marker) {
                    found[marker, default: []].append(log.id)
                }
            }
        }
        return found
    }

    public func callLogPage(start: Int, limit: Int) async throws -> CallLogIDPage {
        let page = try await pipedriveClient().callLogs(start: start, limit: limit)
        return CallLogIDPage(ids: page.items.map(\.id), moreItems: page.moreItems, nextStart: page.nextStart)
    }

    public func lookUp(callLogID: String) async throws -> CallLogLookup {
        do {
            let log = try await pipedriveClient().callLog(id: callLogID)
            guard log.id == callLogID else {
                throw APIError(.permanent, api: .pipedrive, "GET /callLogs/\(callLogID) answered with call log \(log.id)")
            }
            return .exists
        } catch let error as APIError where error.code == .notFound {
            // Only a status the server sent is evidence (the client maps 404 and 410 alone to not_found).
            guard let status = error.status, status == 404 || status == 410 else { throw error }
            return .gone(status: status)
        }
    }
}
