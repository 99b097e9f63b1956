import CallTesting
import Foundation
import Testing

/// Provider references are checked at registration by the rule the delete addresses them with
/// (issue 13, item 7): the built `callrec enqueue` on real files.
extension DeleteCLITests {
    /// A sidecar whose VoipNow event or Telnyx id the delete could never use is refused at
    /// registration, naming the field: the delete's own rule decides, before anything is uploaded.
    @Test(.timeLimit(.minutes(3)))
    func providerReferencesTheDeleteCannotUseFailTheirSidecar() async throws {
        try await withTemporaryDirectory { dir in
            let fm = FileManager.default
            try fm.createDirectory(atPath: "\(dir)/in", withIntermediateDirectories: true)
            let log = #""call_log": {"outcome": "connected", "to_phone_number": "+15550001", "start_time": "2026-11-21 10:00:00"}"#
            func event(_ fields: String) -> String { #"{\#(log), "voipnow_event": {\#(fields)}}"# }
            let cases: [(name: String, sidecar: String, field: String?)] = [
                ("dot", event(#""user_id": "@me", "extension": "0003*210", "event_type": 2, "event_id": ".""#), "voipnow_event.event_id"),
                ("blank", event(#""user_id": "@me", "extension": "0003*210", "event_type": 2, "event_id": " ""#), "voipnow_event.event_id"),
                ("climb", event(#""user_id": "@me", "extension": "0003*210/..", "event_type": 2, "event_id": "Nqey""#), "voipnow_event.extension"),
                ("climb2", event(#""user_id": "../@me", "extension": "0003*210", "event_type": 2, "event_id": "Nqey""#), "voipnow_event.user_id"),
                ("control", event(#""user_id": "@me", "extension": "0003*210", "event_type": 2, "event_id": "Nq\ney""#), "voipnow_event.event_id"),
                ("slash", event(#""user_id": "@me", "extension": "0003*210", "event_type": 2, "event_id": "Nq/ey""#), nil),
                ("self", event(#""user_id": "@me", "extension": "@self", "event_type": 2, "event_id": "Nqey""#), "voipnow_event.extension"),
                ("telnyx", #"{\#(log), "telnyx_recording_id": "../recordings"}"#, "telnyx_recording_id"),
                ("fine", #"{\#(log), "telnyx_recording_id": "3fa85f64-5717-4562-b3fc-2c963f66afa6", "voipnow_event": {"user_id": "@me", "extension": "0003*210", "event_type": 2, "event_id": "Nqey"}}"#, nil),
            ]
            for (i, c) in cases.enumerated() {
                try SyntheticAudio.write(.speech(), seconds: Double(2 + i), to: "\(dir)/in/\(c.name).wav")
                _ = fm.createFile(atPath: "\(dir)/in/\(c.name).json", contents: Data(c.sidecar.utf8))
            }
            let enqueue = try await runProcess(callrec, ["enqueue", "--settle", "0", "\(dir)/in", "--state", "\(dir)/state", "--json"], environment: environment())
            #expect(enqueue.status == 1, "\(enqueue.stderr)")
            let files = try #require(try json(enqueue)["files"] as? [[String: Any]])
            for c in cases {
                let file = try #require(files.first { $0["path"] as? String == "\(c.name).wav" }, "\(c.name)")
                let error = file["error"] as? [String: Any]
                if let field = c.field {
                    #expect(file["status"] as? String == "failed", "\(c.name): \(file)")
                    #expect(error?["code"] as? String == "invalid_sidecar", "\(c.name): \(file)")
                    let message = error?["message"] as? String ?? ""
                    #expect(message.contains("\(c.name).json") && message.contains(field), "\(c.name): \(message)")
                } else {
                    #expect(file["status"] as? String == "ok", "\(c.name): \(file)")
                }
            }
        }
    }
}
