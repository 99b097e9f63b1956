import CallStore
import CallTesting
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import Testing

@testable import CallStorePostgres

/// Values are data, never SQL (every backend); the PostgreSQL store's lifetime is the caller's
/// (a service in its group, or a scoped run around a one-shot command).
@Suite(.timeLimit(.minutes(2)))
struct BindsAndLifetimeTests {
    /// Quotes, a backslash, a statement terminator, a comment, a dollar quote and a placeholder.
    static let hostile = #"it's \' "q" '); DROP TABLE queue_job; -- $1 $$x$$ \\ %s"#

    @Test(arguments: backends)
    func hostileValuesRoundTripAsData(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let key = Self.hostile + " key"
            let job = NewJob(queue: Self.hostile, kind: Self.hostile, args: #"{"x":"\#(Self.hostile.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\""))"}"#,
                             uniqueKey: key, priority: 2, maxAttempts: 5, delay: .zero)
            let id = try await store.insert(job)
            #expect(try await store.enqueue(job) == .duplicate)
            let claimed = try #require(try await store.claim(queue: Self.hostile, limit: 1, owner: Self.hostile, leaseTTL: .seconds(30)).first)
            #expect(claimed.id == id && claimed.queue == Self.hostile && claimed.kind == Self.hostile)
            #expect(claimed.args == job.args && claimed.uniqueKey == key && claimed.leaseOwner == Self.hostile)
            let lease = try #require(claimed.lease)
            // Every kind of error entry (failed, snoozed, released) with the hostile message.
            #expect(try await store.snooze(lease, delay: .zero, reason: Self.hostile, maxSnoozes: 5) == .available)
            let second = try #require(try await store.claim(queue: Self.hostile, limit: 1, owner: "w", leaseTTL: .seconds(30)).first?.lease)
            #expect(try await store.release(second, reason: Self.hostile + " r"))
            let third = try #require(try await store.claim(queue: Self.hostile, limit: 1, owner: "w", leaseTTL: .seconds(30)).first?.lease)
            #expect(try await store.fail(third, error: Self.hostile + " f", permanent: false, retryIn: .seconds(60)) == .available)
            let failed = try await store.existingJob(id)
            #expect(failed.lastError == Self.hostile + " f")
            #expect(failed.errors.map(\.kind) == ["snoozed", "released", "failed"])
            #expect(failed.errors.map(\.error) == [Self.hostile, Self.hostile + " r", Self.hostile + " f"])
            #expect(try await store.jobs(JobQuery(queue: Self.hostile, kind: Self.hostile, uniqueKey: key)).map(\.id) == [id])
            #expect(try await store.expireLeases(ownedBy: [Self.hostile]) == 0)

            let recording = Recording(key: key, path: "/calls/" + Self.hostile + ".wav", metadata: #"{"note":"it's"}"#)
            try await store.commit([.insertRecording(recording),
                                    .setRecordingState(key: key, state: .failed, errorCode: Self.hostile, errorMessage: Self.hostile),
                                    .audit(AuditEntry(at: Date(), recordingKey: key, action: Self.hostile, target: Self.hostile,
                                                      detail: Self.hostile, actor: Self.hostile))])
            let read = try #require(try await store.recording(key: key))
            #expect(read.path == recording.path && read.errorCode == Self.hostile && read.errorMessage == Self.hostile)
            #expect(try await store.recordings(RecordingQuery(path: recording.path)).map(\.key) == [key])
            #expect(try await store.audit(key: key, limit: 10).map(\.detail) == [Self.hostile])
            // The tables are all still there.
            #expect(try await store.queueStats()[.available] == 1)
        }
    }

    // MARK: lifetime (PostgreSQL)

    /// The store in the caller's service group, before the service that uses it: at a graceful
    /// shutdown the user finishes its last statements (a worker releasing its jobs) before the
    /// store stops; then the store refuses work.
    @Test(.enabled(if: postgresAvailable, "PostgreSQL is not available"))
    func aStoreRunsAsAServiceAndOutlivesTheServicesAfterIt() async throws {
        let url = try #require(try TestPostgres.freshDatabase(prefix: "service"))
        let store = try PostgresStore(url: url)
        try await store.migrate()
        let user = StoreUser(store: store)
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: [.init(service: store), .init(service: user)], logger: Logger(label: "test")))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            // Working: a job enqueued and claimed through the running store.
            let deadline = ContinuousClock.now + .seconds(30)
            while user.lease.withLock({ $0 }) == nil, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(5))
            }
            try #require(user.lease.withLock { $0 } != nil, "the service never claimed its job")
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        // The release at shutdown went through: the store was still running.
        #expect(user.released.withLock { $0 } == true)
        let error = await #expect(throws: StoreError.self) { try await store.queueStats() }
        #expect(error?.code == .unavailable)
        // And it does not run twice.
        await #expect(throws: StoreError.self) { try await store.run() }
    }

    /// One-shot use: `withRunningStore` runs the store around the body and closes it, also
    /// when the body throws.
    @Test(.enabled(if: postgresAvailable, "PostgreSQL is not available"))
    func withRunningStoreRunsAroundTheBodyAndClosesAfterIt() async throws {
        let url = try #require(try TestPostgres.freshDatabase(prefix: "scoped"))
        let store = try PostgresStore(url: url)
        try await store.migrate()
        struct Boom: Error {}
        await #expect(throws: Boom.self) {
            try await withRunningStore(store) { store in
                _ = try await store.insert(newJob())
                await store.waitForWork(timeout: .milliseconds(10)) // the listener runs too
                throw Boom()
            }
        }
        let error = await #expect(throws: StoreError.self) { try await store.queueStats() }
        #expect(error?.code == .unavailable)
        #expect(store.wakeUps.count == 0)
        // The job went in before the close.
        let again = try PostgresStore(url: url)
        #expect(try await withRunningStore(again) { try await $0.queueStats()[.available] } == 1)
    }
}

/// A service that uses the store while it runs and once more when the group shuts down.
private final class StoreUser: Service, Sendable {
    let store: PostgresStore
    let lease = Mutex<Lease?>(nil)
    let released = Mutex(false)

    init(store: PostgresStore) { self.store = store }

    func run() async throws {
        _ = try await store.insert(newJob())
        let job = try await store.claimOne()
        lease.withLock { $0 = job.lease }
        try? await gracefulShutdown()
        let ok = try await store.release(try #require(job.lease), reason: "shutdown")
        released.withLock { $0 = ok }
    }
}
