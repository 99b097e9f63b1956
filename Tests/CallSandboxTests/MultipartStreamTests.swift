import Foundation
import Testing

@testable import CallSandbox

@Suite struct MultipartStreamTests {
    private final class Recorder: MultipartConsumer {
        var parts: [(headers: [(name: String, value: String)], body: [UInt8], ended: Bool)] = []
        func partBegins(headers: [(name: String, value: String)]) throws { parts.append((headers, [], false)) }
        func partBody(_ bytes: UnsafeRawBufferPointer) throws { parts[parts.count - 1].body.append(contentsOf: bytes) }
        func partEnds() throws { parts[parts.count - 1].ended = true }
    }

    private let boundary = "XyZ-boundary"

    /// Content full of near-misses: CRs, CRLFs, `--`, and the boundary without its leading CRLF.
    private var tricky: [UInt8] {
        var bytes: [UInt8] = []
        for i in 0..<3000 { bytes.append(UInt8(truncatingIfNeeded: i &* 31 &+ 7)) }
        bytes += Array("\r\n--XyZ-bound\r\r\n-\r\n--XyZ-boundarX--XyZ-boundary\n\r".utf8)
        bytes += [13, 13, 10, 45, 45]
        return bytes
    }

    private var body: [UInt8] {
        Array("preamble to ignore\r\n--\(boundary)\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n--\(boundary)\r\n".utf8)
            + Array("Content-Disposition: form-data; name=\"file\"; filename=\"a.mp3\"\r\nContent-Type: audio/mpeg\r\n\r\n".utf8)
            + tricky + Array("\r\n--\(boundary)--\r\nepilogue".utf8)
    }

    @Test(arguments: [1, 2, 3, 7, 16, 17, 64, 1000, 1 << 20])
    func parsesWhateverTheChunking(chunk: Int) throws {
        let parser = MultipartStream(boundary: boundary)
        let recorder = Recorder()
        let bytes = body
        var offset = 0
        while offset < bytes.count {
            let end = min(offset + chunk, bytes.count)
            try bytes[offset..<end].withUnsafeBytes { try parser.feed($0, into: recorder) }
            offset = end
        }
        #expect(parser.isComplete)
        #expect(recorder.parts.count == 2)
        #expect(recorder.parts[0].body == Array("hello".utf8))
        #expect(recorder.parts[0].headers.first?.name == "content-disposition")
        #expect(recorder.parts[1].headers.map(\.name) == ["content-disposition", "content-type"])
        #expect(recorder.parts[1].headers.last?.value == "audio/mpeg")
        #expect(recorder.parts[1].body == tricky)
        #expect(recorder.parts.allSatisfy { $0.ended })
    }

    @Test func aPartWithoutHeadersAndABodyStartingWithTheDelimiter() throws {
        let parser = MultipartStream(boundary: "b")
        let recorder = Recorder()
        let bytes = Array("--b\r\n\r\nx\r\n--b--".utf8)
        try bytes.withUnsafeBytes { try parser.feed($0, into: recorder) }
        #expect(parser.isComplete)
        #expect(recorder.parts.count == 1)
        #expect(recorder.parts[0].headers.isEmpty)
        #expect(recorder.parts[0].body == Array("x".utf8))
    }

    @Test func anUnterminatedBodyIsIncomplete() throws {
        let parser = MultipartStream(boundary: "b")
        let recorder = Recorder()
        let bytes = Array("--b\r\nContent-Type: audio/mpeg\r\n\r\nabc".utf8)
        try bytes.withUnsafeBytes { try parser.feed($0, into: recorder) }
        #expect(!parser.isComplete)
        #expect(recorder.parts.first?.ended == false)
    }

    @Test func garbageAfterADelimiterIsASyntaxError() {
        let parser = MultipartStream(boundary: "b")
        let recorder = Recorder()
        let bytes = Array("--bzz\r\n\r\n".utf8)
        #expect(throws: MultipartStream.SyntaxError.self) {
            try bytes.withUnsafeBytes { try parser.feed($0, into: recorder) }
        }
    }
}
