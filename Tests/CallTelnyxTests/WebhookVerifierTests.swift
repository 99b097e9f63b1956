import CallTelnyx
import Foundation
import Testing

/// Ed25519 over `"{timestamp}|{body}"` with the account's key, the timestamp within 300 s.
@Suite struct WebhookVerifierTests {
    let signer = Signer()
    let body = Call.recordingSaved()
    let sent = 1_796_551_333
    var now: Date { Date(timeIntervalSince1970: Double(sent)) }

    func rejection(_ verifier: WebhookVerifier, signature: String?, timestamp: String?, body: String? = nil, now: Date? = nil) -> WebhookRejection? {
        do {
            try verifier.verify(signature: signature, timestamp: timestamp, body: Array((body ?? self.body).utf8), now: now ?? self.now)
            return nil
        } catch {
            return error
        }
    }

    @Test func aSignedDeliveryVerifiesWhateverHoldsItsBytes() throws {
        let verifier = try WebhookVerifier(publicKey: signer.publicKey)
        let signature = signer.sign(body, timestamp: "\(sent)")
        try verifier.verify(signature: signature, timestamp: "\(sent)", body: Array(body.utf8), now: now)
        try verifier.verify(signature: signature, timestamp: "\(sent)", body: Data(body.utf8), now: now)
        try verifier.verify(signature: signature, timestamp: "\(sent)", body: Array(("xx" + body).utf8).dropFirst(2), now: now)
        // A key read from a file keeps its newline.
        try WebhookVerifier(publicKey: signer.publicKey + "\n").verify(signature: signature, timestamp: "\(sent)", body: Data(body.utf8), now: now)
    }

    @Test func aTamperedBodyOrTimestampOrAnotherKeyIsABadSignature() throws {
        let verifier = try WebhookVerifier(publicKey: signer.publicKey)
        let signature = signer.sign(body, timestamp: "\(sent)")
        let tampered = body.replacingOccurrences(of: Call.company, with: "+16175550100")
        let cases: [(String, WebhookRejection?)] = [
            ("body", rejection(verifier, signature: signature, timestamp: "\(sent)", body: tampered)),
            ("timestamp", rejection(verifier, signature: signature, timestamp: "\(sent + 1)")),
            ("key", rejection(try WebhookVerifier(publicKey: Signer(seed: 9).publicKey), signature: signature, timestamp: "\(sent)")),
            ("other key's signature", rejection(verifier, signature: Signer(seed: 9).sign(body, timestamp: "\(sent)"), timestamp: "\(sent)")),
        ]
        for (what, rejection) in cases {
            #expect(rejection?.code == .badSignature && rejection?.status == 401, "\(what): \(String(describing: rejection))")
            #expect(rejection?.message.contains(Call.session) == false, "\(what): never the body")
        }
    }

    @Test func missingHeadersAreMissingSignatures() throws {
        let verifier = try WebhookVerifier(publicKey: signer.publicKey)
        let signature = signer.sign(body, timestamp: "\(sent)")
        for (sig, ts) in [(nil, "\(sent)"), (signature, nil), ("", "\(sent)"), (signature, ""), (nil, nil)] as [(String?, String?)] {
            let rejection = rejection(verifier, signature: sig, timestamp: ts)
            #expect(rejection?.code == .missingSignature && rejection?.status == 401, "\(String(describing: rejection))")
        }
        #expect(rejection(verifier, signature: nil, timestamp: "\(sent)")?.message.contains(WebhookVerifier.signatureHeader) == true)
        #expect(rejection(verifier, signature: signature, timestamp: nil)?.message.contains(WebhookVerifier.timestampHeader) == true)
    }

    @Test func aSignatureThatIsNotBase64OfSixtyFourBytesIsBad() throws {
        let verifier = try WebhookVerifier(publicKey: signer.publicKey)
        let short = Data(repeating: 1, count: 63).base64EncodedString()
        for signature in ["not base64!", short, String(signer.sign(body, timestamp: "\(sent)").dropLast(4))] {
            let rejection = rejection(verifier, signature: signature, timestamp: "\(sent)")
            #expect(rejection?.code == .badSignature && rejection?.message.contains("64-byte") == true, "\(signature): \(String(describing: rejection))")
        }
    }

    @Test func theTimestampMustBeWithin300Seconds() throws {
        let verifier = try WebhookVerifier(publicKey: signer.publicKey)
        let signature = signer.sign(body, timestamp: "\(sent)")
        for offset in [-299.0, 299, 300, -300] {
            #expect(rejection(verifier, signature: signature, timestamp: "\(sent)", now: now.addingTimeInterval(offset)) == nil, "\(offset)")
        }
        let old = rejection(verifier, signature: signature, timestamp: "\(sent)", now: now.addingTimeInterval(301))
        #expect(old?.code == .staleTimestamp && old?.status == 403)
        #expect(old?.message.contains("301 s old") == true, "\(String(describing: old))")
        let future = rejection(verifier, signature: signature, timestamp: "\(sent)", now: now.addingTimeInterval(-301))
        #expect(future?.code == .staleTimestamp && future?.message.contains("301 s in the future") == true, "\(String(describing: future))")
        for text in ["yesterday", "1796551333.5", " \(sent)"] {
            #expect(rejection(verifier, signature: signature, timestamp: text)?.code == .staleTimestamp, "\(text)")
        }
        // The tolerance is the verifier's.
        let strict = try WebhookVerifier(publicKey: signer.publicKey, tolerance: .seconds(5))
        #expect(rejection(strict, signature: signature, timestamp: "\(sent)", now: now.addingTimeInterval(6))?.code == .staleTimestamp)
    }

    @Test func anUnusablePublicKeyIsRefused() {
        for key in ["", "not base64!", Data(repeating: 3, count: 31).base64EncodedString(), Data(repeating: 3, count: 64).base64EncodedString()] {
            do {
                _ = try WebhookVerifier(publicKey: key)
                Issue.record("\(key): accepted")
            } catch {
                #expect(error.code == .badPublicKey && error.message.hasPrefix("the public key"), "\(key): \(error)")
            }
        }
    }
}
