public import CallAPI
import CallPhone
public import CallStore
import CallSupport
public import Foundation
public import Logging

/// What the index refresh reads from the configuration.
public struct CRMIndexSettings: Sendable, Equatable {
    /// Region for CRM numbers written without a country code.
    public var region: String?
    /// An incremental refresh (persons and deals updated since the last one) this often.
    public var refresh: Duration
    /// A number the index does not know may bring the next persons refresh forward, to at most
    /// one per this interval.
    public var missRefresh: Duration
    /// A full pass (deletions and merges, leads, users) this often.
    public var fullPass: Duration
    /// Whether leads are listed (a full pass only: v1 has no `updated_since`).
    public var leads: Bool
    /// The custom field of organizations that holds a phone number, if the account keeps one.
    public var organizationPhoneField: String?
    /// How far before the newest update time seen the next incremental listing starts (updates
    /// committed out of order, clocks).
    public var margin: Duration

    public init(region: String? = nil, refresh: Duration = .seconds(15 * 60), missRefresh: Duration = .seconds(60),
                fullPass: Duration = .seconds(24 * 3600), leads: Bool = true, organizationPhoneField: String? = nil,
                margin: Duration = .seconds(120)) {
        self.region = region
        self.refresh = refresh
        self.missRefresh = missRefresh
        self.fullPass = fullPass
        self.leads = leads
        self.organizationPhoneField = organizationPhoneField
        self.margin = margin
    }
}

/// The key a number is indexed and looked up by: E.164, when libphonenumber calls the number
/// valid (as the matcher reads the other party's number; a number it does not call valid is
/// never matched).
public func phoneIndexKey(_ raw: String, region: String?) -> String? {
    PhoneNumbers.normalize(raw, region: region).e164
}

/// Lists the CRM into the index, one page per transaction with the listing's place (a refresh
/// stopped anywhere, even by `kill -9`, resumes from its last page).
public struct CRMIndexSync: Sendable {
    public enum Mode: String, Sendable {
        /// Every kind, from the start; rows not seen again go (deleted or merged in the CRM).
        case full
        /// Persons and deals updated since the last listing (and organizations when they hold
        /// numbers).
        case incremental
        /// Persons only (a miss).
        case persons
    }

    /// What one refresh did.
    public struct Report: Sendable, Equatable {
        public var mode: Mode
        public var pages = 0
        public var rows: [CRMEntityKind: Int] = [:]
        public var removed: [CRMEntityKind: Int] = [:]
        public var skipped: [String] = []
    }

    let store: any CallStore
    let client: PipedriveClient
    let settings: CRMIndexSettings
    let now: @Sendable () -> Date
    let logger: Logger

    public init(store: any CallStore, client: PipedriveClient, settings: CRMIndexSettings, now: @escaping @Sendable () -> Date = { Date() },
                logger: Logger) {
        self.store = store
        self.client = client
        self.settings = settings
        self.now = now
        self.logger = logger
    }

    /// The kinds a refresh of `mode` lists.
    func kinds(_ mode: Mode) -> [CRMEntityKind] {
        let organizations = settings.organizationPhoneField != nil
        switch mode {
        case .full:
            return [.person] + (organizations ? [.organization] : []) + [.deal] + (settings.leads ? [.lead] : []) + [.user]
        case .incremental:
            return [.person] + (organizations ? [.organization] : []) + [.deal]
        case .persons:
            return [.person]
        }
    }

    /// When the schedule next calls for a full pass and for an incremental refresh: nil for a
    /// full pass when none ended yet or one is under way (due now). Only the kinds a match needs
    /// (persons, deals, and organizations when they hold numbers) count: a listing the account
    /// refuses (leads, users) must not make every retry a new full pass.
    func schedule(_ states: [CRMEntityKind: CRMSyncState]) -> (fullPass: Date?, incremental: Date) {
        let needed = kinds(.incremental)
        let built = needed.allSatisfy { states[$0]?.lastFullPassAt != nil }
        let underWay = needed.contains { states[$0].map { $0.full && $0.cursor != nil } ?? false }
        let oldestPass = needed.compactMap { states[$0]?.lastFullPassAt }.min() ?? .distantPast
        let oldestRefresh = needed.compactMap { states[$0]?.lastRefreshAt }.min() ?? .distantPast
        return (built && !underWay ? oldestPass.addingTimeInterval(settings.fullPass.seconds) : nil,
                oldestRefresh.addingTimeInterval(settings.refresh.seconds))
    }

    /// Which refresh is due at `date`, if any: a full pass when none ended yet, one is under way,
    /// or the last is `fullPass` old; else an incremental one when the last is `refresh` old.
    public func due(_ states: [CRMEntityKind: CRMSyncState], at date: Date) -> Mode? {
        let next = schedule(states)
        guard let fullPass = next.fullPass, date < fullPass else { return .full }
        return date >= next.incremental ? .incremental : nil
    }

    /// Whether the first build ended: persons and deals have been listed whole once.
    public static func isBuilt(_ states: [CRMEntityKind: CRMSyncState]) -> Bool {
        states[.person]?.lastFullPassAt != nil && states[.deal]?.lastFullPassAt != nil
    }

    /// The refresh that is due now, if any (a one-shot run's start; a worker's before it takes
    /// jobs, so that no call log is made while the index is still empty).
    @discardableResult
    public func refreshIfDue() async throws -> Report? {
        guard let mode = due(try await store.crmSyncStates(), at: now()) else { return nil }
        return try await refresh(mode, scheduled: true)
    }

    /// Runs one refresh of `mode`: each kind's listing from where it stands. `scheduled`: an
    /// incremental refresh skips a listing that ran within `refresh` (a miss listed the persons).
    public func refresh(_ mode: Mode, scheduled: Bool = false) async throws -> Report {
        var report = Report(mode: mode)
        var states = try await store.crmSyncStates()
        for kind in kinds(mode) {
            try Task.checkCancellation()
            var state = states[kind] ?? CRMSyncState(entity: kind)
            // An incremental refresh skips a listing a miss refreshed within `refresh` (persons
            // listed for a caller need not be listed again on the schedule).
            if scheduled, mode == .incremental, state.cursor == nil, let last = state.lastRefreshAt, now().timeIntervalSince(last) < settings.refresh.seconds {
                continue
            }
            // A scheduled full pass lists only the kinds whose pass is under way or old: a pass
            // that failed at the deals does not list every person again when it is retried.
            if scheduled, mode == .full, !(state.full && state.cursor != nil), let last = state.lastFullPassAt,
               now().timeIntervalSince(last) < settings.fullPass.seconds {
                continue
            }
            do {
                try await list(kind, full: mode == .full, state: &state, report: &report)
            } catch let error as APIError where [.lead, .user, .organization].contains(kind) && ![.rateLimited, .budgetSpent, .stopEverything, .credentialsRefused].contains(error.code) {
                // A listing a match can do without (the account may not allow leads or users):
                // the others go on; the next full pass tries it again.
                report.skipped.append("\(kind.rawValue): \(error)")
                logger.warning("CRM index: a listing failed; the index goes on without it", metadata: ["kind": "\(kind.rawValue)", "error": "\(error)"])
                continue
            }
            states[kind] = state
        }
        if !report.skipped.isEmpty {
            logger.warning("CRM index: some rows could not be read", metadata: ["skipped": "\(report.skipped.prefix(5))", "count": "\(report.skipped.count)"])
        }
        func counts(_ values: [CRMEntityKind: Int]) -> Logger.MetadataValue {
            "\(values.map { "\($0.key.rawValue)=\($0.value)" }.sorted().joined(separator: ","))"
        }
        logger.info("CRM index refreshed", metadata: ["mode": "\(mode.rawValue)", "pages": "\(report.pages)",
                                                      "rows": counts(report.rows), "removed": counts(report.removed)])
        return report
    }

    /// One kind's listing to its end. A full pass resumes one under way (its cursor and
    /// generation); an incremental listing resumes one under way too, else starts from the
    /// stored `updatedSince`.
    private func list(_ kind: CRMEntityKind, full: Bool, state: inout CRMSyncState, report: inout Report) async throws {
        let resuming = state.cursor != nil && state.full == full
        if !resuming {
            state.cursor = nil
            state.full = full
            if full { state.pass += 1 }
        }
        // An incremental listing needs a full pass first (the first build).
        let since: Date? = full ? nil : state.updatedSince
        var newest = state.updatedSince
        var cursor = state.cursor
        let startedAt = now()
        repeat {
            try Task.checkCancellation()
            var page = CRMPage(sync: state)
            var next: String?
            switch kind {
            case .person:
                let listed = try await client.persons(cursor: cursor, updatedSince: since)
                page.persons = listed.items.map(person)
                newest = latest(newest, listed.items.compactMap(\.updateTime))
                next = listed.nextCursor
                report.skipped += listed.skipped
            case .organization:
                let listed = try await client.organizations(cursor: cursor, updatedSince: since)
                page.organizations = listed.items.map(organization)
                newest = latest(newest, listed.items.compactMap(\.updateTime))
                next = listed.nextCursor
                report.skipped += listed.skipped
            case .deal:
                // A full pass keeps open deals only (the rest never match); an incremental one
                // lists every status, so that a deal won or lost since stops matching.
                let listed = try await client.deals(status: full ? "open" : nil, cursor: cursor, updatedSince: since)
                page.deals = listed.items.map(deal)
                newest = latest(newest, listed.items.compactMap(\.updateTime))
                next = listed.nextCursor
                report.skipped += listed.skipped
            case .lead:
                let listed = try await client.leads(start: cursor.flatMap(Int.init) ?? 0)
                page.leads = listed.items.map(lead)
                next = listed.nextStart.map(String.init)
                report.skipped += listed.skipped
            case .user:
                page.users = try await client.users().map { CRMUser(id: $0.id, name: $0.name, email: $0.email, active: $0.active) }
                next = nil
            }
            report.pages += 1
            report.rows[kind, default: 0] += page.persons.count + page.organizations.count + page.deals.count + page.leads.count + page.users.count
            state.cursor = next
            page.sync = state
            if next == nil {
                // The listing's last page: the place is cleared with it.
                page.sync.lastRefreshAt = startedAt
                // Never later than the listing's start: a row read early in a long listing and
                // changed after its page must come in the next incremental one.
                if let newest { page.sync.updatedSince = min(newest, startedAt).addingTimeInterval(-settings.margin.seconds) }
                if !full { page.sync.full = false }
            }
            try await store.applyCRMPage(page)
            state = page.sync
            cursor = next
        } while cursor != nil
        if full {
            state.lastFullPassAt = startedAt
            state.lastRefreshAt = startedAt
            // A first pass has no update time to start from: the time it began, less the margin.
            if state.updatedSince == nil { state.updatedSince = startedAt.addingTimeInterval(-settings.margin.seconds) }
            let removed = try await store.finishCRMFullPass(state)
            report.removed[kind, default: 0] += removed
        }
    }

    private func latest(_ current: Date?, _ times: [Date]) -> Date? {
        guard let newest = times.max() else { return current }
        return max(current ?? newest, newest)
    }

    func numbers(_ raw: [String]) -> [String] {
        var seen = Set<String>()
        return raw.compactMap { phoneIndexKey($0, region: settings.region) }.filter { seen.insert($0).inserted }
    }

    public func person(_ p: PipedrivePerson) -> CRMPerson {
        CRMPerson(id: p.id, name: p.name, orgID: p.orgID, ownerID: p.ownerID, phones: numbers(p.phones.map(\.value)), updatedAt: p.updateTime)
    }

    func organization(_ o: PipedriveOrganization) -> CRMOrganization {
        let raw = settings.organizationPhoneField.flatMap { o.customFields[$0] }
        // A field may hold several numbers, separated by commas, semicolons or slashes.
        let parts = raw.map { $0.split(whereSeparator: { ",;/".contains($0) }).map(String.init) } ?? []
        return CRMOrganization(id: o.id, name: o.name, phones: numbers(parts), updatedAt: o.updateTime)
    }

    func deal(_ d: PipedriveDeal) -> CRMDeal {
        CRMDeal(id: d.id, title: d.title, personID: d.personID, orgID: d.orgID, status: d.status, updatedAt: d.updateTime)
    }

    func lead(_ l: PipedriveLead) -> CRMLead {
        CRMLead(id: l.id, title: l.title, personID: l.personID, orgID: l.orgID, archived: l.archived, updatedAt: l.updateTime)
    }
}

/// When a number the index did not know may bring a persons refresh forward: never sooner than
/// `missRefresh` after the last persons listing, and each refresh that found none of the numbers
/// missed since doubles that wait, up to the scheduled `refresh` (callers the CRM does not have,
/// such as new prospects or spam, would otherwise buy a listing a minute all day). A refresh that
/// found one of them (a person added for a caller) halves the wait, down to `missRefresh`.
public struct MissRefreshPolicy: Sendable {
    public let minimum: Duration
    public let maximum: Duration
    /// The wait after a persons listing before a miss may refresh again.
    public private(set) var interval: Duration
    /// Numbers missed since the last persons listing.
    public private(set) var pending: Set<String> = []

    public init(settings: CRMIndexSettings) {
        minimum = settings.missRefresh
        maximum = max(settings.missRefresh, settings.refresh)
        interval = settings.missRefresh
    }

    public mutating func noteMiss(_ number: String) { pending.insert(number) }

    /// Whether a miss refresh may run `elapsed` after the last persons listing.
    public func due(elapsed: Duration) -> Bool { !pending.isEmpty && elapsed >= interval }

    /// How long until a miss refresh may run (nil: no miss pending).
    public func wait(elapsed: Duration) -> Duration? {
        guard !pending.isEmpty else { return nil }
        return elapsed >= interval ? .zero : interval - elapsed
    }

    /// After a persons listing (a miss refresh or a scheduled one): `found` — the pending numbers
    /// the index now has; `settled` — the misses noted before the listing began (those noted
    /// during it stay pending; nil: all).
    public mutating func listed(found: Int, missRefresh: Bool, settled: Set<String>? = nil) {
        defer {
            if let settled { pending.subtract(settled) } else { pending = [] }
        }
        if found > 0 {
            // Useful: sooner again (halving, not straight back to the minimum: one caller
            // added to the CRM says little about the next).
            interval = max(minimum, interval / 2)
        } else if missRefresh {
            interval = min(maximum, interval * 2)
        }
    }

    /// The pending numbers the index has now (local lookups, no request).
    public func found(in store: any CallStore) async throws -> Int {
        var count = 0
        for number in pending where try await !store.phoneCandidates(number).isEmpty { count += 1 }
        return count
    }
}
