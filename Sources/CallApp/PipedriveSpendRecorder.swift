public import CallAPI
public import CallStore
import Foundation
public import Logging

/// Keeps the day's Pipedrive spend in the ledger (`pipedrive_spend`, LedgerOp
/// ``LedgerOp/addPipedriveSpend(budgetDay:tokens:dailyTokens:resetsAt:)``): every process
/// that talks to Pipedrive adds what its limiter booked, every few seconds and once more when it
/// ends, so the console shows the spend of every worker sharing the account. A batched write
/// (not one per request): the upload path does not wait on it. A failed write keeps the tokens
/// for the next one.
public struct PipedriveSpendRecorder: Sendable {
    public let limiter: PipedriveLimiter
    public let store: any CallStore
    public let logger: Logger

    public init(limiter: PipedriveLimiter, store: any CallStore, logger: Logger) {
        self.limiter = limiter
        self.store = store
        self.logger = logger
    }

    /// Adds what was booked since the last flush, then tells the limiter what every process
    /// sharing the account has spent today (``PipedriveLimiter/shared(budgetDay:total:)``).
    public func flush() async {
        let spend = await limiter.takeUnrecordedSpend()
        if !spend.isEmpty {
            do {
                try await store.commit(spend.map {
                    .addPipedriveSpend(budgetDay: $0.budgetDay, tokens: $0.tokens, dailyTokens: $0.dailyTokens, resetsAt: $0.resetsAt)
                })
            } catch {
                await limiter.restoreUnrecordedSpend(spend)
                logger.warning("the Pipedrive spend could not be recorded; it is tried again", metadata: ["error": "\(error)"])
            }
        }
        await share()
    }

    /// Tells the limiter the latest shared count (nothing when it cannot be read: the limiter
    /// keeps its own count).
    func share() async {
        guard let store = store as? any ConsoleStore else { return }
        do {
            if let latest = try await store.pipedriveSpend() { await limiter.shared(budgetDay: latest.budgetDay, total: latest.tokens) }
        } catch {
            logger.debug("the shared Pipedrive spend could not be read", metadata: ["error": "\(error)"])
        }
    }

    /// `body`, with a flush every `interval` while it runs and one when it ends (however it ends).
    public func recording<T>(every interval: Duration = .seconds(5), _ body: () async throws -> T) async throws -> T {
        // What the other processes spent today counts from the first request.
        await share()
        let flusher = Task {
            while !Task.isCancelled {
                do { try await Task.sleep(for: interval) } catch { break }
                await flush()
            }
        }
        do {
            let value = try await body()
            flusher.cancel()
            await flusher.value
            await flush()
            return value
        } catch {
            flusher.cancel()
            await flusher.value
            await flush()
            throw error
        }
    }
}

extension APIClients {
    /// `body`, with the Pipedrive client's spend kept in `store` while it runs
    /// (``PipedriveSpendRecorder``); without a Pipedrive client, just `body`.
    public func recordingPipedriveSpend<T>(to store: any CallStore, logger: Logger, _ body: () async throws -> T) async throws -> T {
        guard let pipedrive else { return try await body() }
        return try await PipedriveSpendRecorder(limiter: pipedrive.limiter, store: store, logger: logger).recording(body)
    }
}
