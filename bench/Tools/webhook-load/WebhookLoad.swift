import ArgumentParser
import Crypto
import Foundation

/// `callrec-webhook-load`: an open-loop load generator for the Telnyx webhook endpoint
/// (bench/webhooks.sh, goal G2). Every event is sent at its own instant (start + i / rate),
/// whether or not earlier answers came: a slow server meets a queue of due events, not a
/// politely waiting client. Latency counts from that scheduled instant, so time spent waiting
/// for a connection is the server's too (no coordinated omission).
@main
struct WebhookLoad: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "callrec-webhook-load",
        abstract: "Send signed Telnyx call events to a webhook endpoint at a fixed rate; print the answer latencies as JSON.",
        discussion: """
            Each simulated call sends 4 distinct events, in order: call.initiated, call.answered, call.hangup and \
            call.recording.saved (its recording_urls point nowhere: run the worker with --fetch-slots 0). Each event is signed \
            (Ed25519 over "{timestamp}|{body}", as Telnyx signs) with the key in --key-file, created (0600) when missing; \
            --print-public-key prints its public key (base64: TELNYX_PUBLIC_KEY for the worker) and exits. The first --warmup \
            seconds are sent but not counted. Prints {sent, ok, non_2xx, errors, p50_ms, p99_ms, max_ms, achieved_rate, …}.
            """
    )

    @Option(help: "The endpoint, e.g. http://127.0.0.1:8080/webhooks/telnyx.")
    var url: String?
    @Option(help: "Events per second (4 per call).")
    var rate: Double = 2000
    @Option(help: "Seconds measured (after the warm-up).")
    var seconds: Double = 30
    @Option(help: "Seconds sent before the measured ones (not counted).")
    var warmup: Double = 5
    @Option(help: "Concurrent HTTP/1.1 connections at most.")
    var connections: Int = 64
    @Option(help: "A file holding the Ed25519 private key (base64 of its 32 bytes); created when missing.")
    var keyFile: String
    @Flag(help: "Print the public key (base64) and exit.")
    var printPublicKey = false
    @Option(help: "Seconds a request may take before it counts as an error.")
    var timeout: Double = 10

    func validate() throws {
        guard rate > 0, rate.isFinite, seconds > 0, seconds.isFinite, warmup >= 0, warmup.isFinite else {
            throw ValidationError("--rate and --seconds must be positive, --warmup not negative")
        }
        guard connections >= 1 else { throw ValidationError("--connections must be at least 1") }
        guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
        if !printPublicKey {
            guard let url, URL(string: url)?.host != nil else { throw ValidationError("--url must be an http URL (http://127.0.0.1:8080/webhooks/telnyx)") }
        }
    }

    func run() throws {
        let key = try Self.loadOrCreateKey(keyFile)
        if printPublicKey {
            print(key.publicKey.rawRepresentation.base64EncodedString())
            return
        }
        let report = try LoadRun(url: url!, rate: rate, seconds: seconds, warmup: warmup, timeout: timeout, connections: connections, key: key).run()
        if let firstError = report.firstError { FileHandle.standardError.write(Data("callrec-webhook-load: first failure: \(firstError)\n".utf8)) }
        let data = try JSONSerialization.data(withJSONObject: report.document, options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    }

    /// The private key in `path` (base64 of its raw 32 bytes), or a new one written there (0600).
    static func loadOrCreateKey(_ path: String) throws -> Curve25519.Signing.PrivateKey {
        if let data = FileManager.default.contents(atPath: path) {
            let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard let raw = Data(base64Encoded: text), let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: raw) else {
                throw ValidationError("--key-file \(path): not the base64 of a 32-byte Ed25519 private key")
            }
            return key
        }
        let key = Curve25519.Signing.PrivateKey()
        guard FileManager.default.createFile(atPath: path, contents: Data(key.rawRepresentation.base64EncodedString().utf8),
                                             attributes: [.posixPermissions: 0o600]) else {
            throw ValidationError("--key-file \(path): cannot be created")
        }
        return key
    }
}
