import CallAudio
import CallPipeline
import CallStore
import CallSupport
import Foundation
import HTTPTypes
import Hummingbird

/// The pages: each reads what it shows in a few short store queries and renders it.
struct ConsolePages: Sendable {
    let store: any ConsoleStore
    let readOnly: Bool
    let guardian: ConsoleGuard
    let counter: OverviewCounter<ContinuousClock>
    /// Pipedrive's web app, for links (nil: none).
    var pipedriveWebURL: String?
    /// Whether a reconcile pass can run (Pipedrive credentials are set).
    var canReconcile = false

    static let pageSize = 50

    // MARK: overview

    func overview(_ request: Request) async throws -> Response {
        let answer = try await counter.counts()
        let counts = answer.counts, now = counts.at, queue = counts.queue
        // A single row: read for every page (the spend moves every few seconds).
        let spend = try await store.pipedriveSpend()
        let object: [String: Any] = [
            "tokens": spend.map { Self.tokensObject($0, now: now) } ?? false,
            "readOnly": readOnly,
            "now": Self.time(now),
            "counted": answer.age.map { "counted \(Self.age($0.seconds)) ago (a count of this ledger takes a while: it is redone in the background while the page is watched)" } ?? false,
            "recordings": RecordingState.allCases.map { ["state": $0.rawValue, "count": counts.recordings[$0] ?? 0] as [String: Any] },
            "jobs": JobState.allCases.map { ["state": $0.rawValue, "count": queue[$0]] as [String: Any] },
            "due": queue.due,
            "oldestDue": queue.oldestDueSeconds.map(Self.age) ?? "none waiting",
            "uploadedHour": counts.uploadedHour,
            "uploadedDay": counts.uploadedDay,
            "failures": counts.failures.map { ["code": $0.code, "count": $0.count] as [String: Any] },
            "has_failures": !counts.failures.isEmpty,
            "sources": counts.sources.map { ["source": $0.source, "seen": Self.time($0.lastSeen), "ago": Self.age(now.timeIntervalSince($0.lastSeen))] },
            "has_sources": !counts.sources.isEmpty,
        ]
        return ConsoleHeaders.html(.ok, Templates.page("overview", title: "Overview", object))
    }

    /// Today's Pipedrive tokens: spent, left, and when the budget renews. A spend recorded for
    /// a budget day that has ended means nothing was spent since: the next reset is a whole
    /// number of days later.
    static func tokensObject(_ spend: PipedriveSpend, now: Date) -> [String: Any] {
        var resets = spend.resetsAt
        var spent = spend.tokens
        if resets <= now {
            spent = 0
            resets = resets.addingTimeInterval(((now.timeIntervalSince(resets) / 86400).rounded(.down) + 1) * 86400)
        }
        return ["spent": spent, "left": max(0, spend.dailyTokens - spent), "budget": spend.dailyTokens,
                "resets": time(resets), "resetsIn": age(resets.timeIntervalSince(now)), "recorded": time(spend.updatedAt)]
    }

    // MARK: recordings list

    /// The list's filters as read from a query string; `problem` names one that does not read.
    struct Filters {
        var query = RecordingPageQuery(limit: ConsolePages.pageSize + 1)
        /// The filters as given (echoed into the form and the next page's link).
        var given: [(String, String)] = []
        var problem: String?

        init(_ fields: [String: String]) {
            func value(_ name: String) -> String? {
                guard let text = fields[name]?.trimmingCharacters(in: .whitespaces), !text.isEmpty else { return nil }
                given.append((name, text))
                return text
            }
            if let state = value("state") {
                if let state = RecordingState(rawValue: state) { query.states = [state] } else { problem = "state \(state): not a recording state" }
            }
            query.errorCode = value("code")
            query.warningCode = value("warning")
            query.pathPrefix = value("source")
            if let from = value("from") {
                if let day = Self.day(from) { query.createdFrom = day } else { problem = "from \(from): not a date (YYYY-MM-DD)" }
            }
            if let to = value("to") {
                // Through the whole of that day.
                if let day = Self.day(to) { query.createdBefore = day.addingTimeInterval(86400) } else { problem = "to \(to): not a date (YYYY-MM-DD)" }
            }
            if let phone = value("phone") {
                query.digits = Self.digits(phone)
                if query.digits == nil { problem = "phone \(phone): give at least 4 digits" }
            }
            query.callLogID = value("call_log")
            if let after = fields["after"], !after.isEmpty {
                if let cursor = RecordingCursor(after) { query.after = cursor } else { problem = "after: not a page cursor" }
            }
        }

        /// A day in UTC.
        static func day(_ text: String) -> Date? {
            let parts = text.split(separator: "-").compactMap { Int($0) }
            guard parts.count == 3, text.count == 10 else { return nil }
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = TimeZone(identifier: "UTC")!
            return calendar.date(from: DateComponents(year: parts[0], month: parts[1], day: parts[2]))
        }

        /// The digits a phone number is found by, as typed or in E.164: its last nine (a
        /// national number without its trunk or country prefix: `020 7946 0123`, `+44 20 7946
        /// 0123` and `442079460123` all find `...2079460123`); nil below four.
        static func digits(_ phone: String) -> String? {
            let digits = phone.filter(\.isASCII).filter(\.isNumber)
            guard digits.count >= 4 else { return nil }
            return String(digits.suffix(9))
        }
    }

    func recordings(_ request: Request) async throws -> Response {
        let filters = Filters(FormFields.parse(request.uri.query))
        var rows: [Recording] = []
        if filters.problem == nil { rows = try await store.recordingPage(filters.query) }
        let more = rows.count > Self.pageSize
        if more { rows.removeLast() }
        let link = { (after: RecordingCursor?) -> String in
            let fields = filters.given + (after.map { [("after", $0.description)] } ?? [])
            return "/console/recordings" + (fields.isEmpty ? "" : "?" + FormFields.encode(fields))
        }
        let given = Dictionary(filters.given, uniquingKeysWith: { a, _ in a })
        let object: [String: Any] = [
            "readOnly": readOnly,
            "states": RecordingState.allCases.map { ["name": $0.rawValue, "selected": given["state"] == $0.rawValue] as [String: Any] },
            "code": given["code"] ?? "", "warning": given["warning"] ?? "", "source": given["source"] ?? "", "from": given["from"] ?? "", "to": given["to"] ?? "",
            "phone": given["phone"] ?? "", "callLog": given["call_log"] ?? "",
            "problem": filters.problem ?? false,
            "rows": rows.map { recording -> [String: Any] in
                ["key": recording.key, "created": Self.time(recording.createdAt), "state": recording.state.rawValue,
                 "code": recording.errorCode ?? "", "path": recording.path, "seconds": recording.seconds.map { String(format: "%.1f", $0) } ?? "",
                 "parts": recording.partCount]
            },
            "next": more ? link(rows.last.map(RecordingCursor.init(after:))) : false,
            "first": filters.query.after != nil ? link(nil) : false,
        ]
        return ConsoleHeaders.html(.ok, Templates.page("recordings", title: "Recordings", object))
    }

    // MARK: one recording

    /// The unique keys of a recording's jobs (transcode, upload, delete).
    static func jobKeys(_ key: String) -> [String] { ["transcode:\(key)", "upload:\(key)", "delete:\(key)"] }

    func recording(_ request: Request, key: String) async throws -> Response {
        guard let recording = try await store.recording(key: key) else {
            return ConsoleHeaders.message(.notFound, "No such recording", "The ledger has no recording \(key).")
        }
        let parts = try await store.parts(key: key)
        var jobs: [Job] = []
        for uniqueKey in Self.jobKeys(key) { jobs += try await store.jobs(JobQuery(uniqueKey: uniqueKey, limit: 50)) }
        jobs.sort { $0.id > $1.id }
        let refs = try await store.providerRefs(key: key)
        let audit = try await store.audit(key: key, limit: 500)
        let waveform = try await store.waveform(key: key)
        let warningCodes = try await store.warnings(key: key)
        let now = try await store.now()
        let match = audit.first { $0.action == "match" }
        let records = Self.linkedRecords(match: match, metadata: recording.metadata)
        let web = pipedriveWebURL
        let checks = parts.first.flatMap { Self.transcodeReport(partPath: $0.spoolPath) }
        let user = guardian.user(request) ?? ""
        let csrf = guardian.token(user: user)
        let back = "/console/recordings/\(key)"
        let notice = FormFields.parse(request.uri.query)["notice"]
        let object: [String: Any] = [
            "readOnly": readOnly,
            "notice": notice ?? false,
            "key": recording.key, "path": recording.path, "state": recording.state.rawValue,
            "code": recording.errorCode ?? false, "message": recording.errorMessage ?? "",
            "seconds": recording.seconds.map { String(format: "%.2f", $0) } ?? "not decoded yet",
            "created": Self.time(recording.createdAt), "updated": Self.time(recording.updatedAt),
            "metadata": recording.metadata ?? false,
            "parts": parts.map { part -> [String: Any] in
                ["index": part.index, "state": part.state.rawValue, "callLog": part.callLogID ?? "none yet",
                 "origin": part.callLogOrigin?.rawValue ?? false, "seconds": String(format: "%.1f", part.seconds), "bytes": part.bytes,
                 "audio": "/console/recordings/\(key)/parts/\(part.index)/audio"]
            },
            "has_parts": !parts.isEmpty,
            // Pipedrive's web app has no page for one call log: it shows in the timeline of the
            // records it is linked to, which the page links.
            "records": records.map { record -> [String: Any] in
                ["kind": record.kind, "id": record.id, "link": web.flatMap { PipedriveWebLinks.link($0, kind: record.kind, id: record.id) } ?? false]
            },
            "has_records": !records.isEmpty,
            "noWebURL": web == nil && !records.isEmpty,
            "match": match.map { entry -> [String: Any] in
                ["at": Self.time(entry.at), "detail": entry.detail ?? "", "actor": entry.actor, "target": entry.target ?? "no record linked"]
            } ?? false,
            "warningCodes": warningCodes,
            "has_warningCodes": !warningCodes.isEmpty && checks == nil,
            "jobs": jobs.map { job -> [String: Any] in
                ["id": job.id, "kind": job.kind, "state": job.state.rawValue, "attempt": job.attempt, "maxAttempts": job.maxAttempts,
                 "runAt": Self.time(job.runAt), "lastError": job.lastError ?? "",
                 // What a retry changes: a finished job runs again, a waiting one runs now.
                 "retry": !readOnly && (job.state == .discarded || job.state == .cancelled || job.state == .available && job.runAt > now),
                 "cancel": !readOnly && JobState.live.contains(job.state),
                 "csrf": csrf, "back": back]
            },
            "has_jobs": !jobs.isEmpty,
            "refs": refs.map { ["provider": $0.provider, "reference": $0.reference, "state": $0.state] },
            "has_refs": !refs.isEmpty,
            "audit": audit.map { entry -> [String: Any] in
                ["at": Self.time(entry.at), "action": entry.action, "target": entry.target ?? "", "http": entry.httpStatus.map(String.init) ?? "",
                 "detail": entry.detail ?? "", "actor": entry.actor]
            },
            "has_audit": !audit.isEmpty,
            "waveform": waveform.map { Self.waveformObject($0, seconds: recording.seconds) } ?? false,
            "warnings": (checks?.warnings ?? []).map { ["code": $0.code.rawValue, "message": $0.message] },
            "has_warnings": !(checks?.warnings ?? []).isEmpty,
            "stats": checks?.stats.map(Self.statsRows) ?? [],
            "has_checks": checks != nil,
            "deletable": !readOnly && DeletionPlanner.deletableStates.contains(recording.state),
        ]
        return ConsoleHeaders.html(.ok, Templates.page("recording", title: "Recording \(key.prefix(12))", object))
    }

    /// The Pipedrive records a recording's call logs are linked to: the match's decision (its
    /// audit target, `deal:1,person:2`), else the ids the sidecar's call log names.
    static func linkedRecords(match: AuditEntry?, metadata: String?) -> [(kind: String, id: String)] {
        if let target = match?.target, !target.isEmpty {
            return target.split(separator: ",").compactMap { pair in
                let halves = pair.split(separator: ":", maxSplits: 1)
                return halves.count == 2 ? (String(halves[0]), String(halves[1])) : nil
            }
        }
        guard let data = metadata?.data(using: .utf8), let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let callLog = object["call_log"] as? [String: Any] else { return [] }
        return [("deal", "deal_id"), ("lead", "lead_id"), ("person", "person_id"), ("organization", "org_id")].compactMap { kind, field in
            switch callLog[field] {
            case let number as NSNumber: return (kind, number.stringValue)
            case let text as String where !text.isEmpty: return (kind, text)
            default: return nil
            }
        }
    }

    // MARK: reconcile

    /// `GET /console/reconcile`: what a pass does, and the button that plans one.
    func reconcile(_ request: Request) async throws -> Response {
        let object = Self.reconcileObject(nil, notice: nil, planID: nil, csrf: guardian.token(user: guardian.user(request) ?? ""),
                                          canRun: canReconcile, readOnly: readOnly)
        return ConsoleHeaders.html(.ok, Templates.page("reconcile", title: "Reconcile", object))
    }

    static func reconcileObject(_ report: ReconcileReport?, notice: String?, planID: String?, csrf: String, canRun: Bool, readOnly: Bool) -> [String: Any] {
        var object: [String: Any] = ["readOnly": readOnly, "canRun": canRun && !readOnly, "notConfigured": !canRun, "csrf": csrf,
                                     "notice": notice ?? false, "planID": planID ?? false]
        guard let report else { return object }
        object["report"] = [
            "outcome": report.outcome.rawValue, "mode": report.mode,
            "abort": report.abort.map { ["code": $0.code, "message": $0.message] } ?? false,
            "lines": report.recordings.map { line -> [String: Any] in
                ["key": line.key, "path": line.path, "action": line.action, "result": line.result ?? "",
                 "findings": line.findings.map { "\($0.code): \($0.detail)" }.joined(separator: "; "),
                 "targets": line.targets.joined(separator: ", ")]
            },
            "has_lines": !report.recordings.isEmpty,
            "warnings": report.warnings,
        ] as [String: Any]
        return object
    }

    // MARK: deleting

    /// `GET /console/recordings/KEY/delete`: what a deletion would remove (and what it leaves,
    /// and why), with the one button that registers it.
    func confirmDelete(_ request: Request, key: String) async throws -> Response {
        guard let recording = try await store.recording(key: key) else {
            return ConsoleHeaders.message(.notFound, "No such recording", "The ledger has no recording \(key).")
        }
        guard !readOnly else {
            return ConsoleHeaders.message(.forbidden, "Read-only console", "This console was started with --read-only: it changes nothing.")
        }
        let deletable = DeletionPlanner.deletableStates.contains(recording.state)
        let steps = DeletionPlanner.steps(parts: try await store.parts(key: key), refs: try await store.providerRefs(key: key))
        let object: [String: Any] = [
            "key": key, "path": recording.path, "state": recording.state.rawValue, "deletable": deletable,
            "steps": steps.map { step -> [String: Any] in
                ["target": step.target, "goes": step.state == .pending, "state": step.state.rawValue, "detail": step.detail ?? ""]
            },
            "csrf": guardian.token(user: guardian.user(request) ?? ""),
        ]
        return ConsoleHeaders.html(.ok, Templates.page("delete", title: "Delete \(key.prefix(12))", object))
    }

    // MARK: the transcode's findings

    /// The report the transcode left beside the parts (`report.json` in the recording's spool
    /// directory): its warnings and measurements. Nil once the spool is gone.
    static func transcodeReport(partPath: String) -> FileReport? {
        let path = ((partPath as NSString).deletingLastPathComponent as NSString).appendingPathComponent("report.json")
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return try? JSONDecoder().decode(FileReport.self, from: data)
    }

    static func statsRows(_ stats: SignalStats) -> [[String: String]] {
        func db(_ value: Float) -> String { String(format: "%.1f dBFS", value) }
        func percent(_ value: Double) -> String { String(format: "%.0f %%", value * 100) }
        var rows: [(String, String)] = [
            ("peak", db(stats.peakdBFS)),
            ("speech level", stats.activeLeveldBFS.map(db) ?? "no speech"),
            ("noise floor", db(stats.noiseFloordBFS)),
            ("speech-active", percent(stats.activeRatio)),
        ]
        if stats.channelActiveRatios.count > 1 {
            rows.append(("speech-active per leg", stats.channelActiveRatios.map(percent).joined(separator: " / ")))
        }
        rows += [
            ("longest silence", String(format: "%.1f s", stats.longestSilenceSeconds)),
            ("clipped samples", String(stats.clippedSamples)),
        ]
        return rows.map { ["name": $0.0, "value": $0.1] }
    }

    /// The waveform as an SVG path drawn by the server (no script): one vertical stroke per
    /// point, its height the level, mirrored around the middle line.
    static func waveformObject(_ waveform: Waveform, seconds: Double?) -> [String: Any] {
        var path = ""
        for (x, level) in waveform.levels.enumerated() {
            let half = max(0.5, Double(level) / 255 * 50)
            path += String(format: "M%d %.1fV%.1f", x, 50 - half, 50 + half)
        }
        let total = seconds ?? waveform.secondsPerPoint * Double(waveform.levels.count)
        return ["width": max(1, waveform.levels.count), "path": path, "points": waveform.levels.count,
                "duration": String(format: "%.1f", total)]
    }

    // MARK: formatting

    /// `2026-12-07 06:50:12` (UTC).
    static func time(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
        return formatter.string(from: date)
    }

    /// `3 h 12 min`, `45 s`.
    static func age(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        if s < 120 { return "\(s) s" }
        if s < 7200 { return "\(s / 60) min" }
        if s < 172_800 { return "\(s / 3600) h \(s % 3600 / 60) min" }
        return "\(s / 86400) d \(s % 86400 / 3600) h"
    }
}
