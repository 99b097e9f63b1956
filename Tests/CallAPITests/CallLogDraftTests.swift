import CallAPI
import Foundation
import Testing

@Suite struct CallLogDraftTests {
    @Test func requiredFieldsAreReportedTogether() {
        let (draft, problems) = CallLogDraft.parse([:])
        #expect(draft == nil)
        #expect(Set(problems.map(\.field)) == ["call_log.outcome", "call_log.to_phone_number", "call_log.start_time"])
    }

    @Test func acceptsEveryOutcomeAndBothTimeSeparators() {
        for outcome in CallLogDraft.outcomes {
            let (draft, problems) = CallLogDraft.parse(["outcome": outcome, "to_phone_number": "+1", "start_time": "2026-01-01T00:00:00"])
            #expect(problems.isEmpty)
            #expect(draft?.outcome == outcome)
        }
    }

    @Test func booleansAreNotIds() {
        let (_, problems) = CallLogDraft.parse(["outcome": "busy", "to_phone_number": "+1", "start_time": "2026-01-01 00:00:00", "deal_id": true])
        #expect(problems.map(\.field) == ["call_log.deal_id"])
    }
}
