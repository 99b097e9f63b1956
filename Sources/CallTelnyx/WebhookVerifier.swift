import Crypto
public import Foundation

/// Checks a Telnyx webhook's signature (research/sources-and-matching.md §2): Ed25519 over
/// `"{telnyx-timestamp}|{raw body}"` with the account's public key (base64, 32 bytes), the
/// timestamp within ``tolerance`` of now.
public struct WebhookVerifier: Sendable {
    /// The header names, lowercase.
    public static let signatureHeader = "telnyx-signature-ed25519"
    public static let timestampHeader = "telnyx-timestamp"

    public var tolerance: Duration
    let key: Curve25519.Signing.PublicKey

    /// - Throws: ``WebhookRejection`` with code `bad_public_key` when the key is not 32 bytes of base64.
    public init(publicKey base64: String, tolerance: Duration = .seconds(300)) throws(WebhookRejection) {
        self.tolerance = tolerance
        let text = base64.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty else { throw WebhookRejection(.badPublicKey, "the public key is empty") }
        guard let raw = Data(base64Encoded: text) else {
            throw WebhookRejection(.badPublicKey, "the public key is not base64 (the portal's Ed25519 public key is 44 characters of base64)")
        }
        guard raw.count == 32 else {
            throw WebhookRejection(.badPublicKey, "the public key is \(raw.count) bytes, not the 32 of an Ed25519 public key")
        }
        do {
            key = try Curve25519.Signing.PublicKey(rawRepresentation: raw)
        } catch {
            throw WebhookRejection(.badPublicKey, "the public key is not an Ed25519 public key")
        }
    }

    /// Verifies one delivery; throws the rejection (401: missing or bad signature; 403: a
    /// timestamp outside the tolerance).
    public func verify(signature: String?, timestamp: String?, body: some Collection<UInt8>, now: Date) throws(WebhookRejection) {
        guard let signature, !signature.isEmpty else {
            throw WebhookRejection(.missingSignature, "no \(Self.signatureHeader) header")
        }
        guard let timestamp, !timestamp.isEmpty else {
            throw WebhookRejection(.missingSignature, "no \(Self.timestampHeader) header")
        }
        guard let seconds = Int64(timestamp) else {
            throw WebhookRejection(.staleTimestamp, "the \(Self.timestampHeader) header is not a whole number of seconds since 1970")
        }
        let difference = now.timeIntervalSince1970 - Double(seconds)
        let limit = Double(tolerance.components.seconds) + Double(tolerance.components.attoseconds) / 1e18
        guard abs(difference) <= limit else {
            let whole = Int64(difference.rounded())
            let side = whole > 0 ? "\(whole) s old" : "\(-whole) s in the future"
            throw WebhookRejection(.staleTimestamp, "the \(Self.timestampHeader) is \(side) (more than the \(Int64(limit)) s allowed)")
        }
        guard let bytes = Data(base64Encoded: signature), bytes.count == 64 else {
            throw WebhookRejection(.badSignature, "the \(Self.signatureHeader) header is not base64 of a 64-byte signature")
        }
        // The signed message, `"{timestamp}|{body}"`: the body's one copy.
        var message = [UInt8]()
        message.reserveCapacity(timestamp.utf8.count + 1 + body.count)
        message.append(contentsOf: timestamp.utf8)
        message.append(0x7C)
        message.append(contentsOf: body)
        guard key.isValidSignature(bytes, for: message) else {
            throw WebhookRejection(.badSignature, "the signature does not verify with the public key (a different key, or the body or timestamp changed)")
        }
    }
}

/// Why a webhook was refused: a code, the HTTP status it is answered with, and a sentence.
public struct WebhookRejection: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable {
        /// 401: no `telnyx-signature-ed25519` or `telnyx-timestamp` header.
        case missingSignature = "missing_signature"
        /// 401: the signature is not base64 of 64 bytes, or does not verify.
        case badSignature = "bad_signature"
        /// 403: the timestamp is not a number, or further than the tolerance from now.
        case staleTimestamp = "stale_timestamp"
        /// The configured key is unusable (a configuration error, never an answer).
        case badPublicKey = "bad_public_key"
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// 401 or 403.
    public var status: Int { code == .staleTimestamp ? 403 : 401 }
    public var description: String { "\(code.rawValue): \(message)" }
}
