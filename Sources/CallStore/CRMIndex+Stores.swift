import Foundation

// What both backends of ``CRMIndexStore`` do alike: the rows a page writes, and the order of a
// lookup's answer.

extension CRMPage {
    /// The persons to write, one per id (the last of the page wins), by id; each one's phones
    /// deduplicated in order (the first occurrence keeps its place).
    public var personRows: [CRMPerson] {
        Self.lastByID(persons, \.id).map { person in
            var person = person
            person.phones = Self.unique(person.phones)
            return person
        }
    }

    /// The organizations to write, as ``personRows``.
    public var organizationRows: [CRMOrganization] {
        Self.lastByID(organizations, \.id).map { organization in
            var organization = organization
            organization.phones = Self.unique(organization.phones)
            return organization
        }
    }

    public var dealRows: [CRMDeal] { Self.lastByID(deals, \.id) }
    public var leadRows: [CRMLead] { Self.lastByID(leads, \.id) }
    public var userRows: [CRMUser] { Self.lastByID(users, \.id) }

    /// The ids of `kind` this page removes, by id; for every kind but leads, only those that read
    /// as integers (no other can be stored).
    public func removedIntegerIDs(_ kind: CRMEntityKind) -> [Int] {
        Array(Set((removed[kind] ?? []).compactMap { Int($0) })).sorted()
    }

    /// The lead ids this page removes, in byte order.
    public var removedLeadIDs: [String] {
        Array(Set(removed[.lead] ?? [])).sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }

    /// One row per id, the last wins, in id order: concurrent writers then lock rows in the same
    /// order (PostgreSQL) and a page never writes a row twice in one statement.
    static func lastByID<Row, ID: Comparable & Hashable>(_ rows: [Row], _ id: KeyPath<Row, ID>) -> [Row] {
        var byID: [ID: Row] = [:]
        for row in rows { byID[row[keyPath: id]] = row }
        return byID.values.sorted { $0[keyPath: id] < $1[keyPath: id] }
    }

    static func unique(_ phones: [String]) -> [String] {
        var seen = Set<String>()
        return phones.filter { !$0.isEmpty && seen.insert($0).inserted }
    }
}

extension PhoneCandidates {
    /// The documented order: persons and organizations by id; open deals and leads the most
    /// recently updated first (no update time last), then the newest id first.
    public func ordered() -> PhoneCandidates {
        PhoneCandidates(persons: persons.sorted { $0.id < $1.id },
                        organizations: organizations.sorted { $0.id < $1.id },
                        openDeals: openDeals.sorted { Self.newer(($0.updatedAt, $0.id), ($1.updatedAt, $1.id)) },
                        openLeads: openLeads.sorted { Self.newer(($0.updatedAt, $0.id), ($1.updatedAt, $1.id)) })
    }

    private static func newer<ID: Comparable>(_ a: (Date?, ID), _ b: (Date?, ID)) -> Bool {
        switch (a.0, b.0) {
        case (let x?, let y?) where x != y: x > y
        case (.some, nil): true
        case (nil, .some): false
        default: a.1 > b.1
        }
    }
}
