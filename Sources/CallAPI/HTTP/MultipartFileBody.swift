import AsyncHTTPClient
public import Foundation
import NIOCore

/// A `multipart/form-data` body with one file part, streamed from disk with a known
/// `Content-Length`: the preamble (boundary and part headers), the file in 64 KiB chunks, the
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
}

