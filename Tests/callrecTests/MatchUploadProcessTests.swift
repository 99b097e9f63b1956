import CallStore
import CallStoreSQLite
import CallTesting
import Foundation
import Testing

/// Call logs linked from the local CRM index (issue 17), end to end: the built `callrec upload`
/// with a `matching` config against a `callrec sandbox` process whose CRM the test seeds, then
/// the call logs the sandbox holds.
extension RegistrationProcessTests {
    static let crm = """
        {"organizations": [{"id": 1, "name": "Acme GmbH"}, {"id": 2, "name": "Beta AG"}, {"id": 3, "name": "Gamma KG"}],
         "persons": [
           {"id": 7, "name": "Anna Schmidt", "org_id": 1, "phones": [{"value": "030 1234567", "primary": true, "label": "work"}]},
           {"id": 8, "name": "Bernd Meyer", "phones": [{"value": "+49 30 7654321", "primary": true}]},
           {"id": 9, "name": "Carla Weiss", "phones": [{"value": "+4930 5555555", "primary": true}]},
           {"id": 10, "name": "Empfang Acme", "org_id": 1, "phones": [{"value": "+49 30 9999999", "primary": true}]},
           {"id": 11, "name": "Zentrale Acme", "org_id": 1, "phones": [{"value": "(030) 999 99 99", "primary": true}]},
           {"id": 12, "name": "Dora Beta", "org_id": 2, "phones": [{"value": "+49 30 8888888", "primary": true}]},
           {"id": 13, "name": "Emil Gamma", "org_id": 3, "phones": [{"value": "030-8888888", "primary": true}]}],
         "deals": [
           {"id": 11, "title": "Pilot", "person_id": 7, "org_id": 1, "status": "open", "update_time": "2026-12-01T10:00:00Z"},
           {"id": 12, "title": "Renewal", "person_id": 7, "org_id": 1, "status": "open", "update_time": "2026-12-05T10:00:00Z"},
           {"id": 13, "title": "Old", "person_id": 7, "org_id": 1, "status": "won", "update_time": "2026-12-06T10:00:00Z"}],
         "leads": [{"id": "5f0c1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b", "title": "Inbound", "person_id": 8}],
         "users": [{"id": 5, "name": "Anna Agent", "email": "Anna.Agent@acme.com"}, {"id": 6, "name": "Old Agent", "email": "old@acme.com", "active_flag": false}]}
        """

    /// One recording of an inbound (`from` the other party) or outbound call, its sidecar
    /// naming `extra` fields too.
    func call(_ dir: String, _ name: String, from: String, to: String, seconds: Double, extra: String = "") throws {
        try SyntheticAudio.write(.speech(), seconds: seconds, to: "\(dir)/in/\(name).wav")
        write(#"{"call_log": {"outcome": "connected", "from_phone_number": "\#(from)", "to_phone_number": "\#(to)", "start_time": "2026-12-06 10:00:00", "subject": "\#(name)"\#(extra)}}"#,
              to: "\(dir)/in/\(name).json")
    }

    /// The live call logs by subject.
    func logsBySubject(_ sandbox: SandboxProcess) async throws -> [String: [String: Any]] {
        Dictionary(try await liveCallLogs(sandbox).map { ($0["subject"] as? String ?? "", $0) }, uniquingKeysWith: { a, _ in a })
    }

    func links(_ log: [String: Any]?) -> String {
        ["person_id", "org_id", "deal_id", "lead_id"].map { key in "\(key)=\(log?[key].map { "\($0)" } ?? "nil")" }.joined(separator: " ")
    }

    @Test(.timeLimit(.minutes(5)))
    func callLogsLinkTheRightPersonOrganizationDealOrLeadFromTheIndex() async throws {
        try await withSandboxAndDirectory { dir, sandbox, environment in
            let (seeded, _) = try await sandbox.request("POST", "/_sandbox/crm", json: Self.crm)
            #expect(seeded == 200)
            write(#"{"company_numbers": ["+49 30 1234500"], "matching": {"region": "DE"}}"#, to: "\(dir)/callrec.json")
            let company = "+49 30 1234500"
            // Local, national and international forms, with and without separators.
            try call(dir, "deal", from: "0049 30 1234567", to: company, seconds: 2)
            try call(dir, "deal-national", from: "(030) 123-45-67", to: company, seconds: 2.1)
            try call(dir, "lead", from: "+49 (30) 765-4321", to: company, seconds: 2.2)
            try call(dir, "person", from: "030 5555555", to: company, seconds: 2.3)
            try call(dir, "switchboard", from: "+493099 99999", to: company, seconds: 2.4)
            try call(dir, "shared", from: "+49 30 8888888", to: company, seconds: 2.5)
            try call(dir, "outbound", from: company, to: "+49 30 5555555", seconds: 2.6)
            try call(dir, "sidecar-ids", from: "030 1234567", to: company, seconds: 2.7, extra: #", "person_id": 9"#)
            try call(dir, "unknown", from: "+49 30 1111111", to: company, seconds: 2.8)
            try call(dir, "company-only", from: company, to: "201", seconds: 2.9)
            // The owner by the agent's e-mail (any case), from the index's users.
            try SyntheticAudio.write(.speech(), seconds: 3.0, to: "\(dir)/in/owner.wav")
            write(#"{"agent_email": "anna.agent@ACME.com", "call_log": {"outcome": "connected", "from_phone_number": "030 5555555", "to_phone_number": "\#(company)", "start_time": "2026-12-06 10:00:00", "subject": "owner"}}"#,
                  to: "\(dir)/in/owner.json")

            let run = try await runProcess(callrec, ["upload", "--settle", "0", "\(dir)/in", "--state", "\(dir)/state", "--config", "\(dir)/callrec.json", "--json"],
                                           environment: environment)
            #expect(run.status == 0, "\(run.stderr)")
            let logs = try await logsBySubject(sandbox)
            let anna = "person_id=7 org_id=1 deal_id=12 lead_id=nil"
            #expect(links(logs["deal"]) == anna, "the newest open deal of the person, never the won one")
            #expect(links(logs["deal-national"]) == anna)
            #expect(links(logs["lead"]) == "person_id=8 org_id=nil deal_id=nil lead_id=5f0c1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b")
            #expect(links(logs["person"]) == "person_id=9 org_id=nil deal_id=nil lead_id=nil")
            #expect(links(logs["switchboard"]) == "person_id=nil org_id=1 deal_id=nil lead_id=nil", "a switchboard links the organization its persons share")
            #expect(links(logs["shared"]) == "person_id=nil org_id=nil deal_id=nil lead_id=nil", "persons of different organizations: nobody")
            #expect(links(logs["outbound"]) == "person_id=9 org_id=nil deal_id=nil lead_id=nil", "the called number of an outbound call")
            #expect(links(logs["sidecar-ids"]) == "person_id=9 org_id=nil deal_id=nil lead_id=nil", "the sidecar's ids win")
            #expect(links(logs["unknown"]) == "person_id=nil org_id=nil deal_id=nil lead_id=nil")
            #expect(links(logs["company-only"]) == "person_id=nil org_id=nil deal_id=nil lead_id=nil", "the company's own number is never matched")
            #expect(logs["owner"]?["user_id"] as? Int == 5, "the agent's e-mail: \(logs["owner"] ?? [:])")

            // The report says what each recording linked, and why.
            let report = try files(run)
            #expect((report["switchboard.wav"]?["match"] as? [String: Any])?["reason"] as? String == "shared_number_org", "\(report["switchboard.wav"] ?? [:])")
            #expect((report["unknown.wav"]?["match"] as? [String: Any])?["reason"] as? String == "unknown_number")
            #expect((report["sidecar-ids.wav"]?["match"] as? [String: Any])?["reason"] as? String == "sidecar_ids")

            // `callrec status` shows the index and the latest matches.
            let status = try await runProcess(callrec, ["status", "--state", "\(dir)/state", "--json"], environment: environment)
            let statusDocument = try json(status)
            #expect(((statusDocument["crm_index"] as? [String: Any])?["rows"] as? [String: Any])?["person"] as? Int == 7, "\(statusDocument)")
            let reasons = (statusDocument["matches"] as? [[String: Any]] ?? []).compactMap { $0["reason"] as? String }
            #expect(reasons.count == 10 && reasons.contains("shared_number_org") && reasons.contains("deal"), "\(reasons)")

            // Anna's deal is deleted in the CRM; the index still holds it (no refresh yet): the
            // create is refused for that deal, and the call log is made without the matched ids
            // rather than fail the recording.
            let (patched, _) = try await sandbox.request("PATCH", "/_sandbox/crm/deals/12", json: #"{"status": "deleted"}"#)
            #expect(patched == 200)
            try call(dir, "stale-deal", from: "030 1234567", to: company, seconds: 3.05)
            let stale = try await runProcess(callrec, ["upload", "--settle", "0", "\(dir)/in", "--state", "\(dir)/state", "--config", "\(dir)/callrec.json", "--json"],
                                             environment: environment)
            #expect(stale.status == 0, "\(stale.stderr)")
            let staleLog = try await logsBySubject(sandbox)["stale-deal"]
            #expect(staleLog != nil && links(staleLog) == "person_id=nil org_id=nil deal_id=nil lead_id=nil", "\(links(staleLog))")
            #expect((try files(stale)["stale-deal.wav"]?["match"] as? [String: Any])?["reason"] as? String == "match_refused")

            // Carla is deleted in the CRM and Anna merged into Bernd: after the next full pass
            // (`callrec match --refresh full`; a worker's comes every full_pass) Carla's number
            // links nobody and Anna's links Bernd.
            let (deleted, _) = try await sandbox.request("DELETE", "/_sandbox/crm/persons/9")
            #expect(deleted == 200)
            let (merged, _) = try await sandbox.request("POST", "/_sandbox/crm/persons/7/merge", json: #"{"into": 8}"#)
            #expect(merged == 200)
            let before = try await runProcess(callrec, ["match", "030 5555555", "--state", "\(dir)/state", "--config", "\(dir)/callrec.json"],
                                              environment: environment)
            #expect(before.status == 0, "the index still holds Carla until a full pass: \(before.stderr)")
            let refreshed = try await runProcess(callrec, ["match", "030 5555555", "--refresh", "full", "--state", "\(dir)/state",
                                                           "--config", "\(dir)/callrec.json"], environment: environment)
            let explained = String(decoding: refreshed.stdout, as: UTF8.self)
            #expect(refreshed.status == 1, "nothing linked after the pass: \(explained) \(refreshed.stderr)")
            #expect(explained.contains("unknown_number"), "\(explained)")
            try call(dir, "after-delete", from: "030 5555555", to: company, seconds: 3.1)
            try call(dir, "after-merge", from: "030 1234567", to: company, seconds: 3.2)
            let again = try await runProcess(callrec, ["upload", "--settle", "0", "\(dir)/in", "--state", "\(dir)/state", "--config", "\(dir)/callrec.json", "--json"],
                                             environment: environment)
            #expect(again.status == 0, "\(again.stderr)")
            let after = try await logsBySubject(sandbox)
            #expect(links(after["after-delete"]) == "person_id=nil org_id=nil deal_id=nil lead_id=nil", "a deleted person stops matching")
            #expect(after["after-merge"]?["person_id"] as? Int == 8, "a merged person's number links the person it was merged into: \(links(after["after-merge"]))")

            // matching.unknown_numbers create_person: an unknown caller gets a person first.
            write(#"{"company_numbers": ["+49 30 1234500"], "matching": {"region": "DE", "unknown_numbers": "create_person"}}"#, to: "\(dir)/create.json")
            try call(dir, "new-caller", from: "+49 30 2222222", to: company, seconds: 3.3)
            let third = try await runProcess(callrec, ["upload", "--settle", "0", "\(dir)/in", "--state", "\(dir)/state", "--config", "\(dir)/create.json", "--json"],
                                             environment: environment)
            #expect(third.status == 0, "\(third.stderr)")
            let created = try #require(try await logsBySubject(sandbox)["new-caller"]?["person_id"] as? Int, "no person linked")
            let (_, stats) = try await sandbox.request("GET", "/_sandbox/crm/stats")
            #expect(stats["persons"] as? Int == 6, "7 seeded, 1 deleted, 1 merged away, 1 created: \(stats)")
            let createdMatch = try await runProcess(callrec, ["match", "+49 30 2222222", "--refresh", "incremental", "--state", "\(dir)/state",
                                                           "--config", "\(dir)/callrec.json", "--json"], environment: environment)
            #expect((try json(createdMatch)["decision"] as? [String: Any])?["person_id"] as? Int == created, "\(createdMatch.stderr)")
        }
    }
}

extension RegistrationProcessTests {
    /// The index's first build (a full pass: 40 pages of persons) `kill -9`ed part-way resumes
    /// from the last page it committed: the next refresh asks for the pages left, not all again,
    /// and the index ends with every person of the CRM.
    @Test(.timeLimit(.minutes(5)))
    func theIndexRefreshResumesWhereAKillNineStoppedIt() async throws {
        try await withSandboxAndDirectory { dir, sandbox, environment in
            let (generated, _) = try await sandbox.request("POST", "/_sandbox/crm/generate",
                                                          json: #"{"persons": 20000, "organizations": 500, "deals": 800, "leads": 0, "users": 3, "seed": 7, "region": "DE"}"#)
            #expect(generated == 200)
            write(#"{"matching": {"region": "DE"}}"#, to: "\(dir)/callrec.json")
            let match = ["match", "+49 30 1234567", "--refresh", "due", "--state", "\(dir)/state", "--config", "\(dir)/callrec.json",
                         "--log-level", "warning"]
            // The full pass: 40 pages of persons (500 a page), 2 of open deals, 1 of leads, 1 of users.
            let pages = 44
            let before = try await sandbox.requestCount()
            let victim = try startProcess(callrec, match, environment: environment, log: "\(dir)/killed.log")
            let killedAt = await sandbox.kill(victim, atRequest: before + 12)
            _ = try await waitForExit(victim, upTo: 60)
            let killed = try #require(killedAt, "the refresh ended before the kill: \(String(decoding: FileManager.default.contents(atPath: "\(dir)/killed.log") ?? Data(), as: UTF8.self))") - before
            #expect(killed < pages, "killed part-way (after \(killed) requests)")

            let resumed = try await runProcess(callrec, match, environment: environment)
            #expect(resumed.status == 1, "nothing linked for an unknown number: \(resumed.stderr)")
            let total = try await sandbox.requestCount() - before
            // At most the page in flight at the kill is asked for again.
            #expect(total <= pages + 1, "\(total) requests for a \(pages)-page pass killed after \(killed): it started over")
            #expect(total >= pages, "\(total)")

            let store = try SQLiteStore(path: "\(dir)/state/callrec.sqlite")
            let counts = try await store.crmCounts()
            try await store.close()
            #expect(counts[.person] == 20000, "\(counts)")
            #expect(counts[.deal] == 800, "\(counts)")
            #expect(counts[.user] == 3, "\(counts)")
        }
    }
}

extension RegistrationProcessTests {
    /// The worker links as `upload` does: `enqueue`, then `worker --until-idle --config` builds the
    /// index before its first job and links each call log from it.
    @Test(.timeLimit(.minutes(5)))
    func theWorkerLinksFromTheIndexItBuildsBeforeItsFirstJob() async throws {
        try await withSandboxAndDirectory { dir, sandbox, environment in
            let (seeded, _) = try await sandbox.request("POST", "/_sandbox/crm", json: Self.crm)
            #expect(seeded == 200)
            write(#"{"company_numbers": ["+49 30 1234500"], "matching": {"region": "DE"}}"#, to: "\(dir)/callrec.json")
            try call(dir, "deal", from: "0049 30 1234567", to: "+49 30 1234500", seconds: 2)
            try call(dir, "lead", from: "+49 (30) 765-4321", to: "+49 30 1234500", seconds: 2.2)
            let enqueue = try await runProcess(callrec, ["enqueue", "--settle", "0", "\(dir)/in", "--state", "\(dir)/state"], environment: environment)
            #expect(enqueue.status == 0, "\(enqueue.stderr)")
            let worker = try await runProcess(callrec, ["worker", "--until-idle", "--state", "\(dir)/state", "--config", "\(dir)/callrec.json",
                                                        "--log-level", "warning"], environment: environment)
            #expect(worker.status == 0, "\(worker.stderr)")
            let logs = try await logsBySubject(sandbox)
            #expect(links(logs["deal"]) == "person_id=7 org_id=1 deal_id=12 lead_id=nil")
            #expect(links(logs["lead"]) == "person_id=8 org_id=nil deal_id=nil lead_id=5f0c1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b")
        }
    }
}
