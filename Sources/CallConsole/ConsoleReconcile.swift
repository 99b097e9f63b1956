import CallPipeline
import CallStore
import Foundation
import Hummingbird
import Logging

/// The reconcile plans the console showed, by id, until applied (or an hour old): applying
/// runs the pass again with ``Reconciler/Options/expectedPlan`` set to the plan's recordings, so
/// only what the operator saw is deleted — a pass that finds anything else deletes nothing.
actor ReconcilePlans {
    struct Plan: Sendable {
        var keys: Set<String>
        /// The cap the plan was made under (nil: the default), applied with it.
        var maxDelete: Int?
        var user: String
        var at: Date
    }

    static let lifetime: TimeInterval = 3600
    static let kept = 20
    private var plans: [String: Plan] = [:]

    /// Keeps `keys` under a new id (the oldest go beyond ``kept``).
    func keep(_ keys: Set<String>, maxDelete: Int?, user: String, now: Date = Date()) -> String {
        plans = plans.filter { now.timeIntervalSince($0.value.at) < Self.lifetime }
        while plans.count >= Self.kept, let oldest = plans.min(by: { $0.value.at < $1.value.at })?.key { plans[oldest] = nil }
        let id = UUID().uuidString.lowercased()
        plans[id] = Plan(keys: keys, maxDelete: maxDelete, user: user, at: now)
        return id
    }

    /// The plan `id`, taken (a plan is applied once); nil when unknown or expired.
    func take(_ id: String, now: Date = Date()) -> Plan? {
        guard let plan = plans.removeValue(forKey: id), now.timeIntervalSince(plan.at) < Self.lifetime else { return nil }
        return plan
    }
}

extension ConsoleActions {
    /// `POST /console/reconcile/plan`: one pass that lists Pipedrive's call logs and confirms
    /// the missing ones, deleting nothing; the page shows the plan and, when it would delete,
    /// the button that applies exactly it.
    func reconcilePlan(_ request: Request) async throws -> Response {
        let (user, form): (String, [String: String])
        switch try await admit(request, "a reconcile plan") {
        case .success(let admitted): (user, form) = admitted
        case .failure(let refusal): return refusal.response
        }
        guard let reconcile else { return Self.notConfigured }
        var options = Reconciler.Options()
        if let text = form["max_delete"]?.trimmingCharacters(in: .whitespaces), !text.isEmpty {
            guard let cap = Int(text), cap >= 0 else {
                return ConsoleHeaders.message(.badRequest, "Not a number", "At most \(text) deletions: give a whole number (0 or more), or nothing for the default cap.")
            }
            options.maxDelete = cap
        }
        let actor = Self.actor(user)
        let report = try await reconcile(options, actor)
        let planned = Set(report.recordings.filter { $0.action == "would_delete" && !$0.evidence.isEmpty }.map(\.key))
        let id = report.outcome == .planned && !planned.isEmpty ? await plans.keep(planned, maxDelete: options.maxDelete, user: user) : nil
        let summary = Self.summary(report)
        try await store.commit([.audit(AuditEntry(recordingKey: nil, action: "console_reconcile_plan", target: id.map { "plan:\($0)" },
                                                  detail: summary, actor: actor))])
        logger.notice("console: reconcile plan: \(summary)", metadata: ["user": "\(user)"])
        return ConsoleHeaders.html(.ok, Templates.page("reconcile", title: "Reconcile", ConsolePages.reconcileObject(
            report, notice: summary, planID: id, csrf: guardian.token(user: user), canRun: true, readOnly: readOnly)))
    }

    /// `POST /console/reconcile/apply` with the plan's id: the pass again, deleting only if it
    /// plans exactly the recordings shown (else `plan_changed`, nothing deleted); the deletions
    /// are registered and queued (a worker carries them out), audited with who.
    func reconcileApply(_ request: Request) async throws -> Response {
        let (user, form): (String, [String: String])
        switch try await admit(request, "a reconcile apply") {
        case .success(let admitted): (user, form) = admitted
        case .failure(let refusal): return refusal.response
        }
        guard let reconcile else { return Self.notConfigured }
        guard let id = form["plan"], let plan = await plans.take(id) else {
            return ConsoleHeaders.message(.notFound, "No such plan", "That plan was applied already, or is over an hour old, or the console restarted: plan again.")
        }
        let actor = Self.actor(user)
        var options = Reconciler.Options()
        options.apply = true
        options.maxDelete = plan.maxDelete
        options.expectedPlan = plan.keys
        let report = try await reconcile(options, actor)
        let summary = Self.summary(report)
        try await store.commit([.audit(AuditEntry(recordingKey: nil, action: "console_reconcile_apply", target: "plan:\(id)", detail: summary, actor: actor))])
        logger.notice("console: reconcile apply: \(summary)", metadata: ["user": "\(user)"])
        let status: HTTPResponse.Status = report.abort?.code == "plan_changed" ? .conflict : .ok
        return ConsoleHeaders.html(status, Templates.page("reconcile", title: "Reconcile", ConsolePages.reconcileObject(
            report, notice: summary, planID: nil, csrf: guardian.token(user: user), canRun: true, readOnly: readOnly)))
    }

    static var notConfigured: Response {
        ConsoleHeaders.message(.serviceUnavailable, "Reconcile is not configured", "PIPEDRIVE_API_TOKEN is not set where the console runs: it cannot list call logs.")
    }

    /// One line for the audit and the page's notice.
    static func summary(_ report: ReconcileReport) -> String {
        let t = report.totals
        var text = "\(report.mode): \(report.outcome.rawValue); \(t.uploadedRecordings) uploaded recordings, \(t.listedCallLogs) call logs listed, "
            + "\(t.candidates) missing, \(t.confirmedGone) confirmed gone, \(t.plannedRecordings) planned"
        if report.mode == "apply" { text += ", \(t.registered) registered, \(t.resumed) resumed" }
        if let abort = report.abort { text += "; aborted (\(abort.code)): \(abort.message)" }
        return text
    }
}

/// Links into Pipedrive's web app. Its pages are `https://COMPANY.pipedrive.com/deal/ID`,
/// `/person/ID`, `/organization/ID` and `/leads/inbox/ID` (as integrations link them; Pipedrive's
/// API reference documents no web URLs, and none for a single call log, which shows in the
/// timeline of the records it is linked to). The company domain is the API URL's when that is
/// `https://COMPANY.pipedrive.com/…`; the generic `api.pipedrive.com` names no company (and a
/// sandbox no web app): then only `PIPEDRIVE_WEB_URL` gives one.
public enum PipedriveWebLinks {
    public static let variable = "PIPEDRIVE_WEB_URL"

    /// The web app's base (no trailing slash), or nil: no links.
    public static func base(apiURL: String?, configured: String?) -> String? {
        if let configured = configured?.trimmingCharacters(in: .whitespaces), !configured.isEmpty,
           let url = URL(string: configured), url.scheme == "https" || url.scheme == "http", url.host != nil {
            return configured.hasSuffix("/") ? String(configured.dropLast()) : configured
        }
        guard let apiURL, let url = URL(string: apiURL), url.scheme == "https", let host = url.host?.lowercased(),
              host.hasSuffix(".pipedrive.com") else { return nil }
        let company = host.dropLast(".pipedrive.com".count)
        guard !company.isEmpty, !company.contains("."), company != "api", company != "oauth", company != "app" else { return nil }
        return "https://\(host)"
    }

    /// `deal:12` → `BASE/deal/12`; nil for a kind it does not know or an id that is not plain.
    static func link(_ base: String, kind: String, id: String) -> String? {
        guard !id.isEmpty, id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }) else { return nil }
        switch kind {
        case "deal": return "\(base)/deal/\(id)"
        case "person": return "\(base)/person/\(id)"
        case "organization": return "\(base)/organization/\(id)"
        case "lead": return "\(base)/leads/inbox/\(id)"
        default: return nil
        }
    }
}
