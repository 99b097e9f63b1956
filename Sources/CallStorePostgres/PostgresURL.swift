import CallStore
import Foundation

/// A parsed `postgres://user[:password]@host[:port]/database[?sslmode=…]` URL.
///
/// Also accepted: the `postgresql://` scheme, an IPv6 host in brackets, percent-encoded user,
/// password and database. Query parameters other than `sslmode` are ignored. Without `sslmode`
/// TLS is off (the servers callrec talks to are on a private network or loopback).
struct PostgresURL: Sendable, Equatable {
    enum TLSMode: String, Sendable, Equatable {
        /// No TLS.
        case disable
        /// TLS when the server offers it, without certificate checks (libpq's `allow`, `prefer`).
        case prefer
        /// TLS required, without certificate checks (libpq's `require`).
        case require
        /// TLS required, the certificate chain checked, not the host name (libpq's `verify-ca`).
        case verifyCA = "verify-ca"
        /// TLS required, certificate and host name checked (libpq's `verify-full`).
        case verifyFull = "verify-full"
    }

    var user: String
    var password: String?
    var host: String
    var port: Int
    var database: String
    var tls: TLSMode

    /// `postgres://host:port/database`: never the user or password.
    var location: String {
        let shownHost = host.contains(":") ? "[\(host)]" : host
        return "postgres://\(shownHost):\(port)/\(database)"
    }

    init(user: String, password: String?, host: String, port: Int, database: String, tls: TLSMode) {
        self.user = user
        self.password = password
        self.host = host
        self.port = port
        self.database = database
        self.tls = tls
    }

    /// Parses `text`. Errors never repeat the password.
    init(parsing text: String) throws {
        let shown = Self.redacted(text)
        func invalid(_ why: String) -> StoreError {
            StoreError(.configuration, "\(shown) is not a usable PostgreSQL URL: \(why) (expected postgres://user[:password]@host[:port]/database[?sslmode=disable|require])")
        }
        guard let components = URLComponents(string: text) else { throw invalid("it does not parse") }
        guard let scheme = components.scheme?.lowercased(), scheme == "postgres" || scheme == "postgresql" else {
            throw invalid("the scheme must be postgres://")
        }
        guard let host = components.host, !host.isEmpty else { throw invalid("no host") }
        // Foundation keeps the brackets of an IPv6 literal on some platforms.
        self.host = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        if let port = components.port {
            guard (1...65535).contains(port) else { throw invalid("port \(port) is out of range") }
            self.port = port
        } else {
            self.port = 5432
        }
        guard let encodedUser = components.percentEncodedUser, !encodedUser.isEmpty,
              let user = encodedUser.removingPercentEncoding, !user.isEmpty else {
            throw invalid("no user")
        }
        self.user = user
        if let encodedPassword = components.percentEncodedPassword {
            guard let password = encodedPassword.removingPercentEncoding else { throw invalid("the password is not validly percent-encoded") }
            self.password = password
        } else {
            self.password = nil
        }
        var path = components.percentEncodedPath
        if path.hasPrefix("/") { path.removeFirst() }
        guard !path.isEmpty, !path.contains("/"), let database = path.removingPercentEncoding, !database.isEmpty else {
            throw invalid("no database name (the path must be /database)")
        }
        self.database = database
        var tls = TLSMode.disable
        for item in components.queryItems ?? [] where item.name == "sslmode" {
            switch item.value ?? "" {
            case "disable": tls = .disable
            case "allow", "prefer": tls = .prefer
            case "require": tls = .require
            case "verify-ca": tls = .verifyCA
            case "verify-full": tls = .verifyFull
            case let other: throw invalid("unknown sslmode '\(other)'")
            }
        }
        self.tls = tls
    }

    /// `text` with the password (anything between `user:` and `@`) replaced by `***`.
    static func redacted(_ text: String) -> String {
        guard let schemeEnd = text.range(of: "://") else {
            // Not URL-shaped: show it only when it cannot hold a credential.
            return text.contains("@") ? "the database URL" : text
        }
        let rest = text[schemeEnd.upperBound...]
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        guard let at = authority.lastIndex(of: "@") else { return text }
        let userInfo = authority[..<at]
        guard let colon = userInfo.firstIndex(of: ":") else { return text }
        return String(text[..<colon]) + ":***" + String(text[at...])
    }
}
