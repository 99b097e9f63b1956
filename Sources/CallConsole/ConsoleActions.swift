import CallPipeline
import CallStore
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// The console's actions: each a POST with the page's CSRF token, refused in read-only mode, and
/// audited with who asked (the HTTP Basic user name).
struct ConsoleActions: Sendable {
    let store: any ConsoleStore
    let readOnly: Bool
    let guardian: ConsoleGuard
    let logger: Logger
    let reconcile: ConsoleReconcile?
    let plans: ReconcilePlans

    /// A form's body at most (a token and a path).
    static let bodyLimit = 16 * 1024

    /// `POST /console/jobs/ID/retry` or `…/cancel`: back to the page named by the form's
    /// `back` field (a console path), with a notice saying what happened.
    func job(_ request: Request, id: Int64, action: String) async throws -> Response {
        guard action == "retry" || action == "cancel" else {
            return ConsoleHeaders.message(.notFound, "No such action", "Jobs can be retried or cancelled.")
        }
        let (user, form): (String, [String: String])
        switch try await admit(request, "a \(action) of job \(id)") {
        case .success(let admitted): (user, form) = admitted
        case .failure(let refusal): return refusal.response
        }
        let actor = Self.actor(user)
        guard let job = try await store.job(id: id) else {
            return ConsoleHeaders.message(.notFound, "No such job", "The queue has no job \(id).")
        }
        let key = try? job.arguments(as: RecordingJobArguments.self).key
        let notice: String
        if action == "retry" {
            let report = try await QueueRetry.run(ids: [id], store: store, actor: actor)
            if report.changed > 0 {
                notice = report.retried.isEmpty ? "Job \(id) was waiting: it is due now." : "Job \(id) will run again."
            } else {
                notice = "Job \(id) was not retried: \(report.notRetryable.first?.reason ?? "it is not there")."
            }
            try await store.commit([.audit(AuditEntry(recordingKey: key, action: "console_retry", target: "job:\(id)", detail: notice, actor: actor))])
        } else {
            let cancelled = try await store.cancel(ids: [id])
            notice = cancelled == [id] ? "Job \(id) was cancelled." : "Job \(id) was not cancelled: it is \(job.state.rawValue)."
            try await store.commit([.audit(AuditEntry(recordingKey: key, action: "console_cancel", target: "job:\(id)", detail: notice, actor: actor))])
        }
        logger.notice("console: \(notice)", metadata: ["user": "\(user)"])
        let back = form["back"].flatMap { $0.hasPrefix("/console/") && !$0.contains("?") && !$0.contains("//") ? $0 : nil }
            ?? key.map { "/console/recordings/\($0)" } ?? "/console/"
        return ConsoleHeaders.seeOther(back + "?" + FormFields.encode([("notice", notice)]))
    }

    /// `POST /console/recordings/KEY/delete`: registers the deletion everywhere the
    /// confirmation page listed (``DeletionPlanner``: the call logs callrec created, the
    /// provider's recording, the spool) and queues its job; a worker carries it out.
    func delete(_ request: Request, key: String) async throws -> Response {
        let (user, form): (String, [String: String])
        switch try await admit(request, "a deletion of \(key)") {
        case .success(let admitted): (user, form) = admitted
        case .failure(let refusal): return refusal.response
        }
        guard form["confirm"] == "yes" else {
            return ConsoleHeaders.message(.badRequest, "Not confirmed", "A deletion needs its confirmation page's button.")
        }
        let actor = Self.actor(user)
        let notice: String
        do {
            let registration = try await DeletionPlanner(store: store, actor: actor).register(key: key, reason: "console: asked by \(actor)", askedBy: actor)
            switch registration.outcome {
            case .registered: notice = "Deletion registered (\(registration.steps.count) steps); a worker carries it out."
            case .resumed: notice = "The deletion under way was queued again."
            case .alreadyDeleted: notice = "The recording was deleted already."
            }
        } catch let error as DeleteError {
            notice = "Not deleted: \(error.message)"
        }
        logger.notice("console: \(key): \(notice)", metadata: ["user": "\(user)"])
        return ConsoleHeaders.seeOther("/console/recordings/\(key)?" + FormFields.encode([("notice", notice)]))
    }

    struct Refusal: Error {
        var response: Response
    }

    /// The checks every action passes: not read-only, the form's CSRF token is the user's, not
    /// posted by a page of another site. The user and the form, or the refusal to answer.
    func admit(_ request: Request, _ what: String) async throws -> Result<(String, [String: String]), Refusal> {
        guard !readOnly else {
            return .failure(Refusal(response: ConsoleHeaders.message(.forbidden, "Read-only console", "This console was started with --read-only: it changes nothing.")))
        }
        // The middleware let only requests with the password through.
        let user = guardian.user(request) ?? ""
        let form = FormFields.parse(String(buffer: try await request.body.collect(upTo: Self.bodyLimit)))
        guard guardian.check(token: form["csrf"], user: user), Self.sameOrigin(request) else {
            logger.warning("console: \(what) without a valid CSRF token was refused", metadata: ["user": "\(user)"])
            return .failure(Refusal(response: ConsoleHeaders.message(
                .forbidden, "Refused", "This action did not come from a console page (its CSRF token is missing or stale): reload the page and try again.")))
        }
        return .success((user, form))
    }

    /// Who the audit says acted.
    static func actor(_ user: String) -> String { user.isEmpty ? "console" : "console:\(user)" }

    /// A browser's POST from another site says so in `Origin`; a request without one (curl, a
    /// script) is judged by its token alone.
    static func sameOrigin(_ request: Request) -> Bool {
        guard let origin = request.headers[.origin], origin != "null" else { return true }
        guard let host = request.head.authority else { return false }
        return origin == "http://\(host)" || origin == "https://\(host)"
    }
}
