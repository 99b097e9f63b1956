import AsyncHTTPClient
import CallSupport
import Crypto
import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

/// The sandbox's Telnyx that calls back: simulated calls (each with a recording behind expiring
/// links) whose signed webhooks it delivers to ``SandboxConfiguration/telnyxWebhook``.
final class TelnyxPhone: Sendable {
    let links = TelnyxLinks()
    let book = TelnyxCallBook()
    let mp3: TelnyxMP3Cache
    let webhooks: TelnyxWebhooks
    private let configuration: SandboxConfiguration
    private let state: SandboxState
    private let logger: Logger
    /// Draws the lengths of calls ordered without a seed, and the faults of their deliveries.
    private let random: Mutex<SeededRandom>
    /// The seed `random` started from (logged).
    let seed: UInt64

    init(configuration: SandboxConfiguration, state: SandboxState, files: SandboxFiles, logger: Logger) {
        self.configuration = configuration
        self.state = state
        self.logger = logger
        mp3 = TelnyxMP3Cache(encoder: configuration.mp3Encoder, directory: files.root + "/telnyx-media")
        seed = configuration.faults.telnyxSeed ?? UInt64.random(in: 0..<(1 << 53))
        random = Mutex(SeededRandom(seed: seed))
        webhooks = TelnyxWebhooks(configuration: configuration, book: book, logger: logger)
    }

    /// Simulates the calls of `order`: their recordings join the Telnyx recordings, their webhooks
    /// are sent. Throws a 400 for an MP3 call without an encoder.
    func place(_ order: TelnyxCallOrder) async throws(APIError) -> (calls: [PlacedTelnyxCall], seed: UInt64) {
        if order.format == "mp3", configuration.mp3Encoder == nil {
            throw APIError(.badRequest, "format: this sandbox serves WAV only (it was started without an MP3 encoder)")
        }
        let seed = order.seed ?? random.withLock { $0.next() >> 11 }
        var draws = SeededRandom(seed: seed)
        let placed = await book.place(order, random: &draws, links: links)
        await state.addTelnyxRecordings(placed.map(\.recording))
        webhooks.send(placed, random: &draws)
        return (placed, seed)
    }

    /// Makes calls at ``TelnyxLoad/rate`` until ``TelnyxLoad/duration`` has passed or the task is
    /// cancelled; each tick is due at start + n / rate (no drift).
    func run(_ load: TelnyxLoad) async {
        let clock = ContinuousClock()
        let start = clock.now
        let interval = Duration.seconds(1 / load.rate)
        var order = TelnyxCallOrder()
        order.seconds = load.seconds
        order.format = load.format
        var made = 0
        logger.info("telnyx calls started", metadata: ["rate": "\(load.rate)", "seconds": "\(load.seconds)", "seed": "\(seed)"])
        while !Task.isCancelled {
            let due = start + interval * made
            if let duration = load.duration, start.duration(to: due) >= duration { break }
            do { try await clock.sleep(until: due) } catch { break }
            _ = try? await place(order)
            made += 1
        }
        logger.info("telnyx calls stopped", metadata: ["calls": "\(made)"])
    }

    /// The calls, with the call log each one's audio went to (matched by the other party's number
    /// and the start time, within 2 s).
    func calls() async -> [SandboxTelnyxCall] {
        var logsByNumber: [String: [SandboxCallLog]] = [:]
        for log in await state.callLogs() where log.recording != nil && !log.deleted {
            for number in [log.toPhoneNumber, log.fromPhoneNumber].compactMap(\.self) { logsByNumber[number, default: []].append(log) }
        }
        let parser = DateFormatter()
        parser.locale = Locale(identifier: "en_US_POSIX")
        parser.timeZone = TimeZone(identifier: "UTC")
        parser.dateFormat = "yyyy-MM-dd HH:mm:ss"
        return await book.all().map { call in
            var call = call
            let match = logsByNumber[call.otherParty]?.first { log in
                guard let start = parser.date(from: log.startTime) else { return false }
                return abs(start.timeIntervalSince(call.startTime)) <= 2 || call.answerTime.map { abs(start.timeIntervalSince($0)) <= 2 } == true
            }
            if let match, let uploaded = match.recording?.uploadedAt {
                call.callLogId = match.id
                call.audioAt = uploaded.epochMilliseconds
            }
            return call
        }
    }
}

/// Signs and delivers the webhooks of simulated calls: Ed25519 over `"{timestamp}|{body}"` in
/// `telnyx-signature-ed25519` (base64) and `telnyx-timestamp` (epoch seconds), as Telnyx signs
/// them; a failed delivery (no answer, a timeout, a non-2xx) is retried with backoff; every
/// delivery is recorded on its call.
final class TelnyxWebhooks: Sendable {
    private let configuration: SandboxConfiguration
    private let book: TelnyxCallBook
    private let logger: Logger
    private let target: Mutex<String?>
    private let key: Mutex<Curve25519.Signing.PrivateKey>
    /// Deliveries under way (cancelled when the sandbox stops).
    private let running = Mutex<[UUID: Task<Void, Never>]>([:])

    static let keyFile = "telnyx-ed25519.key"

    init(configuration: SandboxConfiguration, book: TelnyxCallBook, logger: Logger) {
        self.configuration = configuration
        self.book = book
        self.logger = logger
        target = Mutex(configuration.telnyxWebhook)
        key = Mutex(Curve25519.Signing.PrivateKey())
    }

    /// Loads the key pair from the state directory, or makes one (and keeps it there, mode 0600).
    func loadKey(files: SandboxFiles) throws {
        guard files.persistent else { return }
        let path = files.root + "/" + Self.keyFile
        if let data = FileManager.default.contents(atPath: path) {
            do {
                let loaded = try Curve25519.Signing.PrivateKey(rawRepresentation: data)
                key.withLock { $0 = loaded }
            } catch {
                throw SandboxError(.stateUnreadable, "\(path) is not an Ed25519 private key (32 bytes)")
            }
            return
        }
        let made = key.withLock { $0 }
        let temporary = path + ".part"
        guard FileManager.default.createFile(atPath: temporary, contents: made.rawRepresentation, attributes: [.posixPermissions: 0o600]) else {
            throw SandboxError(.stateUnreadable, "cannot write the Telnyx signing key to \(temporary)")
        }
        do {
            try FileManager.default.moveItem(atPath: temporary, toPath: path)
        } catch {
            throw SandboxError(.stateUnreadable, "cannot write the Telnyx signing key to \(path): \(error.localizedDescription)")
        }
    }

    /// The public key receivers verify with (base64 of the 32 raw bytes).
    var publicKey: String { key.withLock { $0.publicKey.rawRepresentation.base64EncodedString() } }

    /// Where webhooks go from now on (nil: nowhere).
    var url: String? {
        get { target.withLock { $0 } }
        set { target.withLock { $0 = newValue } }
    }

    /// The signature headers of `body` sent at `timestamp`.
    func signatureHeaders(body: Data, timestamp: Int) throws -> (signature: String, timestamp: String) {
        let signed = Data("\(timestamp)|".utf8) + body
        let signature = try key.withLock { try $0.signature(for: signed) }
        return (signature.base64EncodedString(), String(timestamp))
    }

    /// Sends the events of `placed` to the current URL (none: nothing is sent), with the faults
    /// of the configuration drawn from `random`.
    func send(_ placed: [PlacedTelnyxCall], random: inout SeededRandom) {
        guard let url else { return }
        let faults = configuration.faults
        for call in placed {
            var events = call.events
            if faults.telnyxReorder { events.shuffle(using: &random) }
            var plan: [(event: TelnyxOutgoingEvent, delay: Duration, duplicate: Bool, concurrent: Bool)] = []
            for event in events {
                let delay = faults.telnyxDelay > 0 ? Duration.seconds(Double.random(in: 0...faults.telnyxDelay, using: &random)) : .zero
                let duplicate = faults.telnyxDuplicate > 0 && Double.random(in: 0..<1, using: &random) < faults.telnyxDuplicate
                plan.append((event, delay, duplicate, Bool.random(using: &random)))
            }
            if faults.telnyxDelay > 0 {
                // Each event on its own after its delay: they may overtake each other.
                for step in plan {
                    spawn {
                        try? await Task.sleep(for: step.delay)
                        await self.deliver(step.event, to: url, duplicate: step.duplicate, concurrent: step.concurrent)
                    }
                }
            } else {
                // One after the other, each once its delivery ended: in order (or shuffled).
                let plan = plan
                spawn {
                    for step in plan {
                        if Task.isCancelled { return }
                        await self.deliver(step.event, to: url, duplicate: step.duplicate, concurrent: step.concurrent)
                    }
                }
            }
        }
    }

    /// Delivers `event` (and its duplicate, at the same time or after it).
    private func deliver(_ event: TelnyxOutgoingEvent, to url: String, duplicate: Bool, concurrent: Bool) async {
        guard duplicate else { return await deliverWithRetries(event, to: url, duplicate: false) }
        if concurrent {
            async let first: Void = deliverWithRetries(event, to: url, duplicate: false)
            async let second: Void = deliverWithRetries(event, to: url, duplicate: true)
            _ = await (first, second)
        } else {
            await deliverWithRetries(event, to: url, duplicate: false)
            await deliverWithRetries(event, to: url, duplicate: true)
        }
    }

    private func deliverWithRetries(_ event: TelnyxOutgoingEvent, to url: String, duplicate: Bool) async {
        let backoff = Backoff(base: configuration.telnyxRetryDelay, cap: .seconds(8), jitter: 0.5...1.0)
        for attempt in 1...configuration.telnyxWebhookAttempts {
            if Task.isCancelled { return }
            if await deliverOnce(event, to: url, attempt: attempt, duplicate: duplicate) { return }
            guard attempt < configuration.telnyxWebhookAttempts else { break }
            try? await Task.sleep(for: backoff.delay(afterAttempt: attempt))
        }
        logger.warning("telnyx webhook not delivered", metadata: [
            "event": "\(event.type)", "id": "\(event.id)", "attempts": "\(configuration.telnyxWebhookAttempts)",
        ])
    }

    /// One delivery; true when the receiver answered 2xx.
    private func deliverOnce(_ event: TelnyxOutgoingEvent, to url: String, attempt: Int, duplicate: Bool) async -> Bool {
        let body = event.body(attempt: attempt, deliveredTo: url)
        let sent = Date()
        let started = ContinuousClock.now
        var status: Int?
        var failure: String?
        do {
            let (signature, timestamp) = try signatureHeaders(body: body, timestamp: Int(sent.timeIntervalSince1970))
            var request = HTTPClientRequest(url: url)
            request.method = .POST
            request.headers.add(name: "content-type", value: "application/json")
            request.headers.add(name: "user-agent", value: "telnyx-webhooks (callrec sandbox)")
            request.headers.add(name: "telnyx-signature-ed25519", value: signature)
            request.headers.add(name: "telnyx-timestamp", value: timestamp)
            request.body = .bytes(ByteBuffer(bytes: body))
            let timeout = configuration.telnyxWebhookTimeout
            let response = try await HTTPClient.shared.execute(request, timeout: .milliseconds(timeout.milliseconds))
            _ = try await response.body.collect(upTo: 1 << 20)
            status = Int(response.status.code)
        } catch {
            failure = "\(error)"
        }
        let delivery = SandboxTelnyxDelivery(
            eventId: event.id, eventType: event.type, attempt: attempt, duplicate: duplicate, sentAt: sent.epochMilliseconds,
            status: status, error: failure, latencyMs: started.duration(to: .now).seconds * 1000)
        await book.record(delivery, session: event.session)
        return status.map { (200..<300).contains($0) } ?? false
    }

    private func spawn(_ work: @escaping @Sendable () async -> Void) {
        let id = UUID()
        running.withLock { tasks in
            tasks[id] = Task {
                await work()
                _ = self.running.withLock { $0.removeValue(forKey: id) }
            }
        }
    }

    /// Cancels the deliveries under way (the sandbox stops).
    func stop() {
        let tasks = running.withLock { tasks in
            defer { tasks.removeAll() }
            return Array(tasks.values)
        }
        for task in tasks { task.cancel() }
    }
}
