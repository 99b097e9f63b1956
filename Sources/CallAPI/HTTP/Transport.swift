public import AsyncHTTPClient
import CallSupport
import Foundation
import Logging
import NIOCore
import NIOFileSystem
import NIOFoundationCompat
import NIOHTTP1
import NIOPosix
import Synchronization

/// An HTTP answer, body collected (JSON answers are small; uploads' bodies are streamed out, not
/// in).
struct APIResponse: Sendable {
    let status: Int
    let headers: HTTPHeaders
    let body: ByteBuffer

    var json: Any? {
        guard body.readableBytes > 0 else { return nil }
        return try? JSONSerialization.jsonObject(with: Data(buffer: body), options: [.fragmentsAllowed])
    }

    var isJSON: Bool {
        headers.first(name: "content-type")?.lowercased().contains("json") == true || json != nil
    }

    func header(_ name: String) -> String? { headers.first(name: name) }
}

/// Sends requests with AsyncHTTPClient: TLS verification on (AHC's default, never turned off),
/// deadlines per request, and transport failures classified as "not sent" (safe to retry) or
/// "unknown outcome" (may have taken effect).
struct Transport: Sendable {
    let client: HTTPClient
    let api: APIError.API
    let logger: Logger

    func send(_ request: HTTPClientRequest, timeout: TimeAmount, operation: String) async throws -> APIResponse {
        do {
            let response = try await client.execute(request, timeout: timeout, logger: logger)
            let body = try await response.body.collect(upTo: 4 << 20)
            return APIResponse(status: Int(response.status.code), headers: response.headers, body: body)
        } catch let error as APIError {
            throw error
        } catch {
            throw Self.classify(error, api: api, operation: operation, url: request.url)
        }
    }

    /// A failure before the request could leave this machine is ``APIError/neverSent`` (it
    /// cannot have taken effect, and costs nothing): no connection is `unreachable`, a URL the
    /// client refuses too (settings are checked before any work, so it should not happen).
    /// Anything after that is an unknown outcome (the server may have acted).
    static func classify(_ error: any Error, api: APIError.API, operation: String, url: String? = nil) -> APIError {
        let place = url.flatMap(Self.endpoint).map { " to \($0)" } ?? ""
        func notSent(_ code: APIError.Code, _ why: String) -> APIError {
            var failure = APIError(code, api: api, "\(operation): could not connect\(place) (\(why)); nothing was sent")
            failure.neverSent = true
            return failure
        }
        let text = String(describing: error)
        if let e = error as? HTTPClientError {
            switch e {
            case .invalidURL, .emptyHost, .emptyScheme, .missingSocketPath:
                return notSent(.unreachable, "the URL is not usable: \(e.shortDescription)")
            case .connectTimeout:
                return notSent(.unreachable, e.shortDescription.lowercased())
            case .getConnectionFromPoolTimeout:
                // Every connection of the pool was busy until the deadline.
                return notSent(.transient, e.shortDescription.lowercased())
            case .deadlineExceeded, .readTimeout, .remoteConnectionClosed, .cancelled, .writeTimeout:
                return APIError(.unknownOutcome, api: api, "\(operation): \(e.shortDescription); the request may or may not have taken effect")
            default:
                if e.shortDescription == HTTPClientError.unsupportedScheme("").shortDescription {
                    return notSent(.unreachable, "the URL is not usable: \(e.shortDescription)")
                }
                return APIError(.unknownOutcome, api: api, "\(operation): \(e.shortDescription)")
            }
        }
        if let io = error as? IOError, io.errnoCode == ECONNREFUSED {
            return notSent(.unreachable, "connection refused")
        }
        if error is NIOConnectionError || text.contains("connectionRefused") || text.contains("Connection refused") {
            return notSent(.unreachable, text.contains("efused") ? "connection refused" : "no connection could be made")
        }
        return APIError(.unknownOutcome, api: api, "\(operation): connection failed (\(type(of: error))); the request may or may not have taken effect")
    }

    /// `host:port` of a URL, for messages (never its path, query or user info).
    static func endpoint(_ url: String) -> String? {
        guard let components = URLComponents(string: url), let host = components.host, !host.isEmpty else { return nil }
        return components.port.map { "\(host):\($0)" } ?? host
    }
}

extension Backoff {
    /// The API clients' waits between tries of one request: 250 ms doubling up to 30 s, the
    /// upper half of full jitter (never longer than the cap).
    static let api = Backoff(base: .milliseconds(250), cap: .seconds(30), jitter: 0.5...1.0)
}

/// Tries of one request the API clients make at most, the first included.
let maxRequestAttempts = 5

extension HTTPHeaders {
    /// `Retry-After` (seconds or HTTP date), `retry-after-ms`, else `x-ratelimit-reset` seconds.
    var retryAfter: Duration? {
        explicitRetryAfter ?? Self.clamped(first(name: "x-ratelimit-reset").flatMap(Double.init))
    }

    /// What the server asked for in so many words: `retry-after-ms` or `Retry-After` (seconds or
    /// an HTTP date); nil when it sent neither.
    var explicitRetryAfter: Duration? {
        if let ms = Self.clamped(first(name: "retry-after-ms").flatMap(Double.init).map { $0 / 1000 }) { return ms }
        if let value = first(name: "retry-after") {
            if let s = Self.clamped(Double(value)) { return s }
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = TimeZone(identifier: "GMT")
            formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
            if let date = formatter.date(from: value) { return Self.clamped(date.timeIntervalSinceNow) }
        }
        return nil
    }

    /// Header values are untrusted: NaN, ±inf and huge numbers are clamped to 0…1 day (a trap
    /// converting them would take the process down; a spent daily budget's 429 asks to wait
    /// until its reset, hours away).
    private static func clamped(_ s: Double?) -> Duration? {
        guard let s, s.isFinite else { return nil }
        return .milliseconds(Int64(Swift.min(Swift.max(s, 0), 86_400) * 1000))
    }
}

extension Transport {
    /// Sends `path` as a one-part multipart body with a known `Content-Length`, chunk by chunk,
    /// each write awaited before the next chunk is read. (The async body API lets a fast file
    /// reader enqueue writes on the event loop faster than writability is signalled, and the
    /// client's memory grew with the upload speed; awaiting each write's future bounds it to a
    /// couple of chunks whatever the file size.)
    func sendFile(url: String, headers: HTTPHeaders, path: String, filename: String, timeout: Duration,
                  operation: String) async throws -> APIResponse {
        let ended = EndFlag()
        do {
            return try await FileSystem.shared.withFileHandle(forReadingAt: FilePath(path)) { handle in
                let size = try await handle.info().size
                let multipart = MultipartFileBody(filename: filename, fileSize: size)
                var headers = headers
                headers.replaceOrAdd(name: "content-type", value: multipart.contentType)
                // The async API pulls the next chunk only when the last one was written (memory
                // stays at a few chunks whatever the file size), and when the connection drops it
                // stops pulling and fails the request at once.
                let chunks = handle.readChunks(chunkLength: .kibibytes(256))
                let stream = MultipartStream(preamble: ByteBuffer(string: multipart.preamble), chunks: chunks,
                                             epilogue: ByteBuffer(string: multipart.epilogue), ended: ended)
                var request = HTTPClientRequest(url: url)
                request.method = .POST
                request.headers = headers
                request.body = .stream(stream, length: .known(multipart.length))
                let response = try await client.execute(request, timeout: .nanoseconds(timeout.components.seconds * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000), logger: logger)
                let body = try await response.body.collect(upTo: 4 << 20)
                return APIResponse(status: Int(response.status.code), headers: response.headers, body: body)
            }
        } catch let error as APIError {
            throw error
        } catch let error as FileSystemError {
            throw APIError(.permanent, api: api, "\(operation): cannot read \(path): \(error.message)")
        } catch {
            var classified = Self.classify(error, api: api, operation: operation, url: url)
            if classified.code == .unknownOutcome {
                classified.bodyDelivered = ended.value.load(ordering: .acquiring)
                if classified.bodyDelivered == false {
                    classified.message = "\(operation): the connection closed before the whole file was sent; nothing can have been stored"
                }
            }
            throw classified
        }
    }
}


/// The multipart body: preamble, the file's chunks, epilogue.
/// Set once a streamed body has been handed out whole.
final class EndFlag: Sendable {
    let value = Atomic(false)
}

/// `ended` turns true once the client asks for more after the epilogue, i.e. the whole body was
/// handed to the connection (AsyncHTTPClient stops asking when a write fails). While it is
/// false the body is known to be incomplete; true does not prove it arrived.
struct MultipartStream<Chunks: AsyncSequence & Sendable>: AsyncSequence, Sendable where Chunks.Element == ByteBuffer {
    typealias Element = ByteBuffer
    let preamble: ByteBuffer
    let chunks: Chunks
    let epilogue: ByteBuffer
    let ended: EndFlag

    struct AsyncIterator: AsyncIteratorProtocol {
        var stage = 0
        let preamble: ByteBuffer
        var chunks: Chunks.AsyncIterator
        let epilogue: ByteBuffer
        let ended: EndFlag

        mutating func next() async throws -> ByteBuffer? {
            switch stage {
            case 0:
                stage = 1
                return preamble
            case 1:
                if let chunk = try await chunks.next() { return chunk }
                stage = 2
                return epilogue
            default:
                // Asked for more: every byte was handed to the connection.
                ended.value.store(true, ordering: .releasing)
                return nil
            }
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(preamble: preamble, chunks: chunks.makeAsyncIterator(), epilogue: epilogue, ended: ended)
    }
}

extension HTTPClient {
    /// The client callrec's API clients should use: redirects are never followed (AsyncHTTPClient
    /// would forward `x-api-token` to another host on a cross-origin redirect), and a 3xx answer
    /// is then a permanent error. TLS verification stays at its default (on).
    public static func makeForAPIs() -> HTTPClient {
        var configuration = HTTPClient.Configuration()
        configuration.redirectConfiguration = .disallow
        configuration.timeout = .init(connect: .seconds(10))
        // A connection that cannot be made fails its request at once (the clients retry a few
        // times, then a run stops: an unreachable API must not hold it for minutes). With the
        // default, each request waited out the connect timeout while the pool kept trying.
        configuration.connectionPool.retryConnectionEstablishment = false
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }
}
