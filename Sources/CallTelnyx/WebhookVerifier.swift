public import Foundation

/// Checks a Telnyx webhook's signature (research/sources-and-matching.md §2): Ed25519 over
/// `"{telnyx-timestamp}|{raw body}"` with the account's public key (base64, 32 bytes), the
/// timestamp within ``tolerance`` of now.
public struct WebhookVerifier: Sendable {
    /// The header names, lowercase.
    public static let signatureHeader = "telnyx-signature-ed25519"
    public static let timestampHeader = "telnyx-timestamp"

    public var tolerance: Duration

    /// - Throws: ``WebhookRejection`` with code `bad_public_key` when the key is not 32 bytes of base64.
    public init(publicKey base64: String, tolerance: Duration = .seconds(300)) throws(WebhookRejection) {
        self.tolerance = tolerance
        throw WebhookRejection(.badPublicKey, "not implemented (WP-A)")
    }

    /// Verifies one delivery; throws the rejection (401: missing or bad signature; 403: a
    /// timestamp outside the tolerance).
    public func verify(signature: String?, timestamp: String?, body: some Collection<UInt8>, now: Date) throws(WebhookRejection) {
        throw WebhookRejection(.badSignature, "not implemented (WP-A)")
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
