import HTTPTypes

/// Which API a request is for, how it is counted, and what it costs.
struct RouteInfo: Sendable, Equatable {
    enum API: Sendable { case pipedrive, telnyx, voipnow, introspection }

    var api: API
    /// The counter key: method and path pattern, e.g. `GET /v1/callLogs/{id}`.
    var key: String
    /// Pipedrive tokens (api-contract §1.2): list 20, get 2, add 10, recording 10, delete 6; the v2
    /// listings 10, a v2 add 5.
    var cost: Int = 0
    /// The route runs the `cut` fault itself (the upload cuts in the middle of its body).
    var cutsItself = false

    /// Nil for paths outside the three APIs and `/_sandbox/`.
    init?(method: HTTPRequest.Method, path: String) {
        var parts = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        let verb = method.rawValue
        if parts.first == "api", parts.dropFirst().first == "v1" { parts.removeFirst() }  // /api/v1 works like /v1
        if parts.first == "api", parts.dropFirst().first == "v2" {  // Pipedrive's v2 (Telnyx has /v2 without /api)
            api = .pipedrive
            let rest = Array(parts.dropFirst(2))
            switch (method, rest.count) {
            case (.get, 1) where ["persons", "organizations", "deals"].contains(rest[0]): (key, cost) = ("GET /api/v2/\(rest[0])", 10)
            case (.post, 1) where rest[0] == "persons": (key, cost) = ("POST /api/v2/persons", 5)
            default: key = "\(verb) /api/v2/(unknown)"
            }
            return
        }
        switch parts.first {
        case "v1":
            api = .pipedrive
            let rest = Array(parts.dropFirst())
            switch (method, rest.count) {
            case (.get, 1) where rest[0] == "callLogs": (key, cost) = ("GET /v1/callLogs", 20)
            case (.post, 1) where rest[0] == "callLogs": (key, cost) = ("POST /v1/callLogs", 10)
            case (.get, 2) where rest[0] == "callLogs": (key, cost) = ("GET /v1/callLogs/{id}", 2)
            case (.get, 1) where rest[0] == "leads": (key, cost) = ("GET /v1/leads", 20)
            case (.get, 1) where rest[0] == "users": (key, cost) = ("GET /v1/users", 20)
            case (.delete, 2) where rest[0] == "callLogs": (key, cost) = ("DELETE /v1/callLogs/{id}", 6)
            case (.post, 3) where rest[0] == "callLogs" && rest[2] == "recordings":
                (key, cost, cutsItself) = ("POST /v1/callLogs/{id}/recordings", 10, true)
            default: key = "\(verb) /v1/(unknown)"
            }
        case "v2":
            api = .telnyx
            let rest = Array(parts.dropFirst())
            switch rest.count {
            case 1 where rest[0] == "recordings": key = "\(verb) /v2/recordings"
            case 2 where rest[0] == "recordings": key = "\(verb) /v2/recordings/{id}"
            default: key = "\(verb) /v2/(unknown)"
            }
        case "uapi":
            api = .voipnow
            let rest = Array(parts.dropFirst())
            if rest.count >= 4, rest[0] == "extensions", rest[3] == "phoneCallEvents", rest.count <= 6 {
                key = "\(verb) /uapi/extensions/{user_id}/{extension}/phoneCallEvents"
                    + (rest.count >= 5 ? "/{type}" : "") + (rest.count == 6 ? "/{id}" : "")
            } else {
                key = "\(verb) /uapi/(unknown)"
            }
        case "_sandbox":
            api = .introspection
            key = "\(verb) \(path)"
        default:
            return nil
        }
    }
}
