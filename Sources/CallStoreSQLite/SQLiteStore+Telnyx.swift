public import CallStore
import Foundation
import GRDB

// Telnyx webhook events (issue 16); table of migration v4. Step-0 stub (WP-B replaces it).
extension SQLiteStore {
    public func telnyxEvents(sessions: [String]) async throws -> [TelnyxEventRow] {
        throw StoreError(.unavailable, "telnyx events: not implemented (WP-B)")
    }

    public func telnyxEvent(id: String) async throws -> TelnyxEventRow? {
        throw StoreError(.unavailable, "telnyx events: not implemented (WP-B)")
    }
}
