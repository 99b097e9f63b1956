import AsyncHTTPClient
import CallSandbox
import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import Testing

@Suite struct LargeUploadTests {
    /// A 384 MiB upload, generated while it is sent, must not grow the process by anything like
    /// its size: the sandbox streams the part to disk while hashing it. (Resident memory is the
    /// whole process's, other tests run alongside, so the bound is loose: half the upload.)
    @Test func aLargeUploadKeepsMemoryFlat() async throws {
        let unit = try makeMP3(seconds: 60, sampleRate: 16000)
        let copies = (384 << 20) / unit.count
        var hasher = SHA256()
        for _ in 0..<copies { hasher.update(data: unit) }
        let expected = hasher.finalize().map { String(format: "%02x", $0) }.joined()

        try await withTestSandbox { client, sandbox in
            let id = try await client.newCallLog()
            let boundary = "----callrec-large-\(UUID().uuidString)"
            let head = Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"long.mp3\"\r\nContent-Type: audio/mpeg\r\n\r\n".utf8)
            let tail = Data("\r\n--\(boundary)--\r\n".utf8)
            let body = RepeatedBody(head: head, unit: unit, copies: copies, tail: tail)

            var request = HTTPClientRequest(url: client.base.absoluteString + "/v1/callLogs/\(id)/recordings")
            request.method = .POST
            request.headers.add(name: "x-api-token", value: client.configuration.pipedriveToken)
            request.headers.add(name: "Content-Type", value: "multipart/form-data; boundary=\(boundary)")
            request.body = .stream(body, length: .known(Int64(head.count + unit.count * copies + tail.count)))

            let upload = request
            let before = residentBytes()
            let peak = PeakSampler()
            let status = try await withThrowingTaskGroup(of: Int?.self) { group in
                group.addTask {
                    while !Task.isCancelled {
                        peak.record(residentBytes())
                        try? await Task.sleep(for: .milliseconds(20))
                    }
                    return nil
                }
                group.addTask {
                    let response = try await HTTPClient.shared.execute(upload, timeout: .seconds(120))
                    _ = try await response.body.collect(upTo: 1 << 20)
                    return Int(response.status.code)
                }
                var status: Int?
                while let result = try await group.next() {
                    if let result {
                        status = result
                        group.cancelAll()
                    }
                }
                return status
            }
            #expect(status == 200)
            let recording = try #require(await sandbox.callLog(id: id)?.recording)
            #expect(recording.bytes == Int64(unit.count * copies))
            #expect(recording.sha256 == expected)
            let growth = peak.maximum - before
            #expect(growth < 192 << 20, "resident memory grew by \(growth >> 20) MiB during a \((unit.count * copies) >> 20) MiB upload")
        }
    }
}

/// `head`, then `copies` × `unit`, then `tail`, produced as it is consumed.
private struct RepeatedBody: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let head: Data
    let unit: Data
    let copies: Int
    let tail: Data

    struct AsyncIterator: AsyncIteratorProtocol {
        let body: RepeatedBody
        var index = -1
        mutating func next() async -> ByteBuffer? {
            defer { index += 1 }
            switch index {
            case -1: return ByteBuffer(bytes: body.head)
            case 0..<body.copies: return ByteBuffer(bytes: body.unit)
            case body.copies: return ByteBuffer(bytes: body.tail)
            default: return nil
            }
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(body: self) }
}

/// The largest value recorded, from any thread.
private final class PeakSampler: @unchecked Sendable {
    // @unchecked: every access goes through `lock`.
    private let lock = NSLock()
    private var value = 0
    func record(_ bytes: Int) { lock.withLock { value = max(value, bytes) } }
    var maximum: Int { lock.withLock { value } }
}

/// VmRSS of this process, in bytes (0 where /proc is missing).
private func residentBytes() -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        return (Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) * 1024
    }
    return 0
}
