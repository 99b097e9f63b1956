import Foundation
import HTTPTypes
import Hummingbird

extension HTTPField.Name {
    static let apiToken = HTTPField.Name("x-api-token")!
    static let rateLimitLimit = HTTPField.Name("x-ratelimit-limit")!
    static let rateLimitRemaining = HTTPField.Name("x-ratelimit-remaining")!
    static let rateLimitReset = HTTPField.Name("x-ratelimit-reset")!
    static let sandboxFault = HTTPField.Name("x-sandbox-fault")!
    static let sandboxDelay = HTTPField.Name("x-sandbox-delay")!
}

extension Response {
    /// A JSON answer.
    static func json(_ value: JSONValue, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        data(value.encoded(), contentType: "application/json; charset=utf-8", status: status, headers: headers)
    }

    /// A v1 listing's page: `{success, data, additional_data: {pagination: {start, limit,
    /// more_items_in_collection, next_start (only when more follow)}}}`.
    static func v1Page(_ items: [JSONValue], start: Int, limit: Int, more: Bool) -> Response {
        var pagination: [String: JSONValue] = ["start": .int(Int64(start)), "limit": .int(Int64(limit)), "more_items_in_collection": .bool(more)]
        if more { pagination["next_start"] = .int(Int64(start + items.count)) }
        return json(["success": true, "data": .array(items), "additional_data": ["pagination": .object(pagination)]])
    }

    /// An answer made of `data`, with its content type.
    static func data(_ data: Data, contentType: String, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        var fields = headers
        fields[.contentType] = contentType
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// The five-field Pipedrive error envelope (api-contract §1.5).
func pipedriveEnvelope(_ message: String) -> JSONValue {
    [
        "success": false,
        "error": .string(message),
        "error_info": "Please check developers.pipedrive.com for more information about Pipedrive API.",
        "data": nil,
        "additional_data": nil,
    ]
}

/// Pipedrive's abuse block: an HTML page from Cloudflare, not JSON (api-contract §1.6).
func cloudflareBlockPage() -> String {
    """
    <!DOCTYPE html>
    <html lang="en-US">
    <head><title>Access denied | api.pipedrive.com used Cloudflare to restrict access</title></head>
    <body>
    <div id="cf-wrapper">
      <h1><span class="cf-error-type">Error</span> <span class="cf-error-code">1020</span></h1>
      <h2 class="cf-subheadline">Access denied</h2>
      <p>This website is using a security service to protect itself from online attacks.</p>
      <p>This error is produced by Cloudflare. The site owner has blocked your access based on your request rate.</p>
      <p>Cloudflare Ray ID: <strong>\(randomHex(16))</strong> &bull; (callrec sandbox)</p>
    </div>
    </body>
    </html>

    """
}

/// Decodes `%XX` escapes (and leaves a string without escapes as it is).
func percentDecoded(_ text: some StringProtocol) -> String {
    let string = String(text)
    return string.removingPercentEncoding ?? string
}

/// The query string as decoded key/value pairs (`page%5Bsize%5D=2` → `page[size]`, `2`).
func queryItems(_ query: String?) -> [String: String] {
    guard let query, !query.isEmpty else { return [:] }
    var items: [String: String] = [:]
    for pair in query.split(separator: "&") {
        let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        let key = percentDecoded(parts[0].replacingOccurrences(of: "+", with: " "))
        let value = parts.count > 1 ? percentDecoded(parts[1].replacingOccurrences(of: "+", with: " ")) : ""
        if items[key] == nil { items[key] = value }
    }
    return items
}
