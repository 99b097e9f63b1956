import HTTPTypes

/// A failure a route answers with. The middleware renders it in the error format of the API the
/// request was for (Pipedrive envelope, Telnyx JSON:API errors, VoipNow `{error:{code,message}}`).
struct APIError: Error, Sendable {
    var status: HTTPResponse.Status
    /// Telnyx (`"10005"`) or VoipNow (`"extension_invalid"`) code; Pipedrive has none.
    var code: String?
    /// Telnyx `title`.
    var title: String?
    /// Human readable: Pipedrive `error`, Telnyx `detail`, VoipNow `message`.
    var message: String
    var headers: HTTPFields = [:]

    init(_ status: HTTPResponse.Status, code: String? = nil, title: String? = nil, _ message: String, headers: HTTPFields = [:]) {
        self.status = status
        self.code = code
        self.title = title
        self.message = message
        self.headers = headers
    }
}

/// Thrown after the connection was closed on purpose (`cut`, `lost`): nothing is answered.
struct ConnectionDropped: Error {}
