import AsyncHTTPClient
import CallSandbox
import CallTesting
import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import Testing

/// One HTTP answer, collected.
struct HTTPResult {
    var status: Int
    var headers: HTTPHeaders
    var body: Data

    /// The body as a JSON object (fails the test when it is not one).
    var json: [String: Any] {
        get throws {
            let value = try JSONSerialization.jsonObject(with: body, options: [.fragmentsAllowed])
            return try #require(value as? [String: Any], "not a JSON object: \(String(decoding: body, as: UTF8.self))")
        }
    }

    /// The body as a JSON array.
    var jsonArray: [Any] {
        get throws {
            let value = try JSONSerialization.jsonObject(with: body)
            return try #require(value as? [Any], "not a JSON array: \(String(decoding: body, as: UTF8.self))")
        }
    }

    var text: String { String(decoding: body, as: UTF8.self) }

    func header(_ name: String) -> String? { headers.first(name: name) }
}

/// A small client for the sandbox: base URL plus the credentials of its configuration.
struct SandboxClient {
    let base: URL
    let configuration: SandboxConfiguration

    var pipedriveAuth: [String: String] { ["x-api-token": configuration.pipedriveToken] }
    var telnyxAuth: [String: String] { ["Authorization": "Bearer \(configuration.telnyxKey)"] }
    var voipnowAuth: [String: String] { ["Authorization": "Bearer \(configuration.voipnowToken)"] }

    func send(
        _ method: HTTPMethod, _ path: String, headers: [String: String] = [:], body: Data? = nil,
        streamChunk: Int? = nil, timeout: TimeAmount = .seconds(30)
    ) async throws -> HTTPResult {
        var request = HTTPClientRequest(url: base.absoluteString + path)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body {
            if let streamChunk {
                request.body = .stream(ChunkedBytes(data: body, chunk: streamChunk), length: .known(Int64(body.count)))
            } else {
                request.body = .bytes(body)
            }
        }
        let response = try await HTTPClient.shared.execute(request, timeout: timeout)
        let buffer = try await response.body.collect(upTo: 64 << 20)
        return HTTPResult(status: Int(response.status.code), headers: response.headers, body: Data(buffer.readableBytesView))
    }

    /// `POST /v1/callLogs` with a valid body (plus `extra` fields).
    func createCallLog(_ extra: [String: Any] = [:], headers: [String: String] = [:]) async throws -> HTTPResult {
        var body: [String: Any] = [
            "outcome": "connected", "to_phone_number": "+15551230000", "from_phone_number": "+15559870000",
            "start_time": "2026-11-20 10:00:00", "end_time": "2026-11-20 10:04:10", "subject": "Renewal",
        ]
        for (key, value) in extra { body[key] = value }
        return try await send(.POST, "/v1/callLogs", headers: pipedriveAuth.merging(headers) { $1 }.merging(["Content-Type": "application/json"]) { $1 },
                              body: try JSONSerialization.data(withJSONObject: body))
    }

    /// Creates a call log and returns its id.
    func newCallLog(_ extra: [String: Any] = [:]) async throws -> String {
        let result = try await createCallLog(extra)
        try #require(result.status == 200, "create failed: \(result.status) \(result.text)")
        return try #require((try result.json["data"] as? [String: Any])?["id"] as? String)
    }

    /// `POST /v1/callLogs/{id}/recordings` with one multipart part.
    func upload(
        _ id: String, data: Data, name: String = "file", filename: String? = "call.mp3", contentType: String? = "audio/mpeg",
        headers: [String: String] = [:], streamChunk: Int? = nil
    ) async throws -> HTTPResult {
        let boundary = "----callrec-test-\(UUID().uuidString)"
        let body = multipartBody(boundary: boundary, parts: [(name, filename, contentType, data)])
        return try await send(
            .POST, "/v1/callLogs/\(id)/recordings",
            headers: pipedriveAuth.merging(headers) { $1 }.merging(["Content-Type": "multipart/form-data; boundary=\(boundary)"]) { $1 },
            body: body, streamChunk: streamChunk)
    }
}

/// A multipart/form-data body.
func multipartBody(boundary: String, parts: [(name: String, filename: String?, contentType: String?, data: Data)]) -> Data {
    var body = Data()
    for part in parts {
        var head = "--\(boundary)\r\nContent-Disposition: form-data; name=\"\(part.name)\""
        if let filename = part.filename { head += "; filename=\"\(filename)\"" }
        head += "\r\n"
        if let type = part.contentType { head += "Content-Type: \(type)\r\n" }
        head += "\r\n"
        body.append(Data(head.utf8))
        body.append(part.data)
        body.append(Data("\r\n".utf8))
    }
    body.append(Data("--\(boundary)--\r\n".utf8))
    return body
}

/// Hands out `data` in fixed-size ByteBuffers (a streamed request body).
struct ChunkedBytes: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let data: Data
    let chunk: Int

    struct AsyncIterator: AsyncIteratorProtocol {
        let data: Data
        let chunk: Int
        var offset = 0
        mutating func next() async -> ByteBuffer? {
            guard offset < data.count else { return nil }
            let end = Swift.min(offset + chunk, data.count)
            defer { offset = end }
            await Task.yield()
            return ByteBuffer(bytes: data[data.startIndex + offset ..< data.startIndex + end])
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(data: data, chunk: chunk) }
}

/// A configuration with made-up credentials and no rate limit worth mentioning.
func testConfiguration(_ change: (inout SandboxConfiguration) -> Void = { _ in }) -> SandboxConfiguration {
    var configuration = SandboxConfiguration.random()
    configuration.burstPerTwoSeconds = 10_000
    configuration.dailyTokens = 10_000_000
    change(&configuration)
    return configuration
}

/// Runs `body` against a fresh sandbox.
func withTestSandbox<T>(
    _ configuration: SandboxConfiguration = testConfiguration(),
    _ body: (SandboxClient, Sandbox) async throws -> T
) async throws -> T {
    try await withSandbox(configuration) { base, sandbox in
        try await body(SandboxClient(base: base, configuration: configuration), sandbox)
    }
}

/// A real MP3 (speech-like, `seconds` long), written with CallTesting's synthesiser.
func makeMP3(seconds: Double = 5, sampleRate: Int = 8000) throws -> Data {
    let path = NSTemporaryDirectory() + "callrec-sandbox-test-" + UUID().uuidString + ".mp3"
    defer { try? FileManager.default.removeItem(atPath: path) }
    try SyntheticAudio.write(.speech(), seconds: seconds, sampleRate: sampleRate, format: .mp3, to: path)
    return try Data(contentsOf: URL(fileURLWithPath: path))
}

/// Where the first `count` frames of an MPEG Layer III stream without an ID3 tag start, by the
/// test's own reading of the frame headers (bitrate, sample rate and padding give the length).
func mp3FrameOffsets(_ data: Data, count: Int) -> [Int] {
    let bytes = [UInt8](data)
    var offsets: [Int] = []
    var offset = 0
    while offsets.count < count, offset + 4 <= bytes.count, bytes[offset] == 0xFF, bytes[offset + 1] & 0xE0 == 0xE0 {
        offsets.append(offset)
        let mpeg1 = (bytes[offset + 1] >> 3) & 0x3 == 3
        let version = (bytes[offset + 1] >> 3) & 0x3
        let bitrates = mpeg1 ? [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320] : [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160]
        let rates = mpeg1 ? [44100, 48000, 32000] : version == 2 ? [22050, 24000, 16000] : [11025, 12000, 8000]
        let bitrate = bitrates[Int(bytes[offset + 2] >> 4)] * 1000, rate = rates[Int((bytes[offset + 2] >> 2) & 0x3)]
        offset += (mpeg1 ? 144 : 72) * bitrate / rate + Int((bytes[offset + 2] >> 1) & 0x1)
    }
    return offsets
}

func sha256Hex(_ data: Data) -> String {
    SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
}

/// A fresh temporary directory path (not created).
func temporaryPath() -> String {
    NSTemporaryDirectory() + "callrec-sandbox-test-" + UUID().uuidString
}
