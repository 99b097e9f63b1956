import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// The console's locks: HTTP Basic against the password (any user name), and the CSRF token of
/// each action, an HMAC of the user name under a secret drawn when the process starts (a token
/// is good for that user until the console restarts; a page from another site cannot read it).
struct ConsoleGuard: Sendable {
    let password: ConsolePassword
    private let secret: SymmetricKey

    init(password: ConsolePassword, secret: SymmetricKey = SymmetricKey(size: .bits256)) {
        self.password = password
        self.secret = secret
    }

    /// The user name of a request whose `Authorization: Basic` carries the password; nil
    /// otherwise.
    func user(_ request: Request) -> String? {
        guard let header = request.headers[.authorization] else { return nil }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "basic",
              let decoded = Data(base64Encoded: String(parts[1]).trimmingCharacters(in: .whitespaces)) else { return nil }
        let bytes = Array(decoded)
        guard let colon = bytes.firstIndex(of: UInt8(ascii: ":")) else { return nil }
        guard Self.equal(Array(bytes[(colon + 1)...]), password.bytes) else { return nil }
        return String(decoding: bytes[..<colon], as: UTF8.self)
    }

    /// The CSRF token of `user`'s forms.
    func token(user: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Data("callrec-console-csrf\u{0}\(user)".utf8), using: secret)
        return Data(mac).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// Whether `token` is `user`'s (compared in constant time).
    func check(token: String?, user: String) -> Bool {
        guard let token else { return false }
        return Self.equal(Array(token.utf8), Array(self.token(user: user).utf8))
    }

    /// Compares without stopping at the first difference (the time says nothing of where).
    static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(a.count == b.count ? 0 : 1)
        for i in 0..<max(a.count, b.count) {
            difference |= (i < a.count ? a[i] : 0) ^ (i < b.count ? b[i] : 0)
        }
        return difference == 0
    }
}

/// 401 with a Basic challenge for every console request without the password; an error of a
/// page (the store did not answer) logged and answered 500 with what it was.
struct ConsoleAuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let guardian: ConsoleGuard
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard guardian.user(request) != nil else {
            var response = ConsoleHeaders.message(.unauthorized, "Password needed",
                                                  "The console needs its password (HTTP Basic; any user name, which the audit records).")
            response.headers[.wwwAuthenticate] = #"Basic realm="callrec console", charset="UTF-8""#
            return response
        }
        do {
            return try await next(request, context)
        } catch let error as HTTPError {
            throw error
        } catch {
            logger.warning("console: \(request.method) \(request.uri.path) failed: \(error)")
            return ConsoleHeaders.message(.internalServerError, "The page could not be made", "\(error)")
        }
    }
}

/// `application/x-www-form-urlencoded` fields (a query string or a form's body): `+` is a
/// space, then percent-decoding; the first value of a repeated name wins.
enum FormFields {
    static func parse(_ text: String?) -> [String: String] {
        var fields: [String: String] = [:]
        for pair in (text ?? "").split(separator: "&") {
            let halves = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ part: Substring) -> String {
                let spaced = part.replacingOccurrences(of: "+", with: " ")
                return spaced.removingPercentEncoding ?? spaced
            }
            let name = decode(halves[0])
            if fields[name] == nil { fields[name] = halves.count > 1 ? decode(halves[1]) : "" }
        }
        return fields
    }

    /// `name=value&…` with each part percent-encoded (for links that keep a page's filters).
    static func encode(_ fields: [(String, String)]) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return fields.map { name, value in
            "\(name)=\(value.addingPercentEncoding(withAllowedCharacters: allowed) ?? value)"
        }.joined(separator: "&")
    }
}
