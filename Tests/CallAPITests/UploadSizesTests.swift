import AsyncHTTPClient
import CallSandbox
import CallTesting
import Crypto
import Foundation
import Logging
import Testing

@testable import CallAPI

/// The streamed multipart body is byte-exact whatever the size: the SHA-256 the sandbox computed
/// over the `file` part it received equals the file's.
@Suite(.serialized) struct UploadSizesTests {
    static func sha256(of path: String) throws -> String {
        let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        var hash = SHA256()
        while let chunk = try handle.read(upToCount: 1 << 22), !chunk.isEmpty { hash.update(data: chunk) }
        return hash.finalize().map { String(format: "%02x", $0) }.joined()
    }

    func upload(_ path: String) async throws -> (SandboxRecording?, String) {
        var configuration = SandboxConfiguration.random()
        configuration.burstPerTwoSeconds = 1000
        return try await withSandbox(configuration) { url, sandbox in
            let client = PipedriveClient(baseURL: url.absoluteString + "/v1", token: Secret(configuration.pipedriveToken),
                                         limiter: PipedriveLimiter(), httpClient: .shared, logger: Logger(label: "t"))
            var draft = CallLogDraft(outcome: "connected", toPhoneNumber: "+1", startTime: "2026-11-20 10:00:00")
            draft.endTime = "2026-11-20 10:00:01"
            let log = try await client.createCallLog(draft)
            #expect(try await client.uploadRecording(callLogId: log.id, path: path, filename: "x.mp3") == .uploaded)
            return (await sandbox.callLog(id: log.id)?.recording, try Self.sha256(of: path))
        }
    }

    @Test func tinyUploadIsExact() async throws {
        try await withTemporaryDirectory { dir in
            try SyntheticAudio.write(.speech(), seconds: 0.05, format: .mp3, to: "\(dir)/tiny.mp3")
            let (stored, sha) = try await upload("\(dir)/tiny.mp3")
            #expect(stored?.sha256 == sha)
            #expect(stored?.bytes == Int64(try Data(contentsOf: URL(fileURLWithPath: "\(dir)/tiny.mp3")).count))
        }
    }

    @Test func oneGibibyteSparseUploadIsExact() async throws {
        try await withTemporaryDirectory { dir in
            let path = "\(dir)/huge.mp3"
            try SyntheticAudio.write(.speech(), seconds: 30, format: .mp3, to: path)
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
            try handle.truncate(atOffset: 1 << 30)  // sparse: an MP3, then zeros up to 1 GiB
            try handle.close()
            let (stored, sha) = try await upload(path)
            #expect(stored?.bytes == 1 << 30)
            #expect(stored?.sha256 == sha)
        }
    }
}
