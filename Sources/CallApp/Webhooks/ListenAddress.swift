import Foundation

/// `--listen HOST:PORT`: where the webhook endpoint is served. The host defaults to 127.0.0.1
/// (`8080` and `:8080` mean 127.0.0.1:8080); an IPv6 address goes in brackets (`[::1]:8080`);
/// port 0 picks a free one.
public struct ListenAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Nil with the reason when `text` is not `[HOST]:PORT`, `PORT` or `[IPv6]:PORT`.
    public static func parse(_ text: String) -> Result<ListenAddress, ListenAddressError> {
        let text = text.trimmingCharacters(in: .whitespaces)
        var host = "", portText = text
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return .failure(.init("an IPv6 address needs its closing bracket: [::1]:8080")) }
            host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { return .failure(.init("the port is missing after the address: [\(host)]:8080")) }
            portText = String(rest.dropFirst())
            guard !host.isEmpty else { return .failure(.init("the IPv6 address in brackets is empty")) }
        } else if let colon = text.lastIndex(of: ":") {
            host = String(text[..<colon])
            portText = String(text[text.index(after: colon)...])
            guard !host.contains(":") else { return .failure(.init("an IPv6 address goes in brackets: [\(host)]:\(portText)")) }
        }
        guard !portText.isEmpty else { return .failure(.init("the port is missing (HOST:PORT, e.g. 127.0.0.1:8080)")) }
        guard portText.allSatisfy(\.isASCII), let port = Int(portText), (0...65535).contains(port) else {
            return .failure(.init("\(portText) is not a port (0…65535)"))
        }
        guard !host.contains(where: { $0 == " " || $0 == "/" }) else { return .failure(.init("\(host) is not a host name or address")) }
        return .success(ListenAddress(host: host.isEmpty ? "127.0.0.1" : host, port: port))
    }

    /// `HOST:PORT`, with an IPv6 address in brackets (what a URL takes).
    public var description: String { "\(host.contains(":") ? "[\(host)]" : host):\(port)" }
}

/// Why a `--listen` value is not an address.
public struct ListenAddressError: Error, Sendable, Hashable, CustomStringConvertible {
    public var reason: String
    init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}
