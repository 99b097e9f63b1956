import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFileSystem

/// A `multipart/form-data` body with one file part, streamed from disk with a known
/// `Content-Length`: the preamble (boundary and part headers), the file in 256 KiB chunks, the
/// closing boundary. Memory stays flat whatever the file's size, and the bytes on the wire
/// between preamble and epilogue are exactly the file's.
public struct MultipartFileBody: Sendable {
    public let boundary: String
    public let preamble: String
    public let epilogue: String
    public let fileSize: Int64

    /// The `Content-Type` header value.
    public var contentType: String { "multipart/form-data; boundary=\(boundary)" }
    /// The exact body length: the request carries `Content-Length`, not chunked encoding.
    public var length: Int64 { Int64(preamble.utf8.count) + fileSize + Int64(epilogue.utf8.count) }

    public init(fieldName: String = "file", filename: String, contentType: String = "audio/mpeg", fileSize: Int64,
                boundary: String = "callrec-" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()) {
        self.boundary = boundary
        self.fileSize = fileSize
        let safeName = filename.replacingOccurrences(of: "\"", with: "_").replacingOccurrences(of: "\r", with: "").replacingOccurrences(of: "\n", with: "")
        preamble = "--\(boundary)\r\nContent-Disposition: form-data; name=\"\(fieldName)\"; filename=\"\(safeName)\"\r\nContent-Type: \(contentType)\r\n\r\n"
        epilogue = "\r\n--\(boundary)--\r\n"
    }

    /// Runs `body` with a request body that streams `path`; the file stays open only inside.
    static func withStreamingBody<T: Sendable>(path: String, filename: String,
                                               _ body: (HTTPClientRequest.Body, MultipartFileBody) async throws -> T) async throws -> T {
        try await FileSystem.shared.withFileHandle(forReadingAt: FilePath(path)) { handle in
            let size = try await handle.info().size
            let multipart = MultipartFileBody(filename: filename, fileSize: size)
            let chunks = handle.readChunks(chunkLength: .kibibytes(256))
            let sequence = MultipartSequence(preamble: ByteBuffer(string: multipart.preamble), chunks: chunks,
                                             epilogue: ByteBuffer(string: multipart.epilogue))
            return try await body(.stream(sequence, length: .known(multipart.length)), multipart)
        }
    }
}

/// preamble, then the file's chunks, then the epilogue.
struct MultipartSequence<Chunks: AsyncSequence & Sendable>: AsyncSequence, Sendable where Chunks.Element == ByteBuffer {
    typealias Element = ByteBuffer
    let preamble: ByteBuffer
    let chunks: Chunks
    let epilogue: ByteBuffer

    struct AsyncIterator: AsyncIteratorProtocol {
        var stage = 0
        let preamble: ByteBuffer
        var chunks: Chunks.AsyncIterator
        let epilogue: ByteBuffer

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
                return nil
            }
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(preamble: preamble, chunks: chunks.makeAsyncIterator(), epilogue: epilogue)
    }
}
