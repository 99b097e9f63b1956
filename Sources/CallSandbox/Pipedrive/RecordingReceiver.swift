import Crypto
import Foundation
import HTTPTypes
import NIOCore

#if canImport(Glibc)
import Glibc
private let posixWrite = Glibc.write
private let posixClose = Glibc.close
#elseif canImport(Darwin)
import Darwin
private let posixWrite = Darwin.write
private let posixClose = Darwin.close
#endif

/// The `file` part of an upload, written to disk.
struct ReceivedFile: Sendable {
    var path: String
    var bytes: Int64
    /// Lowercase hex SHA-256.
    var sha256: String
    var contentType: String
    var filename: String
}

/// Receives a `multipart/form-data` upload while it streams in: the parser sees each body chunk as
/// it arrives, the `file` part's bytes go to a file and through SHA-256 at once, so memory holds
/// one chunk whatever the upload's size.
enum RecordingReceiver {
    /// The `boundary` parameter of a `multipart/form-data` content type.
    static func boundary(contentType: String?) -> String? {
        guard let contentType else { return nil }
        let (value, parameters) = parseHeaderValue(contentType)
        guard value.lowercased() == "multipart/form-data", let boundary = parameters["boundary"], !boundary.isEmpty,
              boundary.utf8.count <= 200
        else { return nil }
        return boundary
    }

    /// Streams `body` into `path`.
    /// - Parameters:
    ///   - maximumBytes: a `file` part larger than this gets 413.
    ///   - cutAfter: the `cut` fault: once this many body bytes arrived, `cut` runs (it closes the
    ///     connection) and `ConnectionDropped` is thrown.
    /// - Throws: ``APIError`` 400/413 for a bad upload, ``ConnectionDropped`` after a cut, or the
    ///   transport's error when the client goes away. The file at `path` is removed on every error.
    static func receive<Body: AsyncSequence>(
        _ body: Body, boundary: String, to path: String, maximumBytes: Int64?,
        cutAfter: Int64?, cut: () async -> Void
    ) async throws -> ReceivedFile where Body.Element == ByteBuffer {
        let collector = PartCollector(path: path, maximumBytes: maximumBytes)
        let parser = MultipartStream(boundary: boundary)
        var received: Int64 = 0
        do {
            for try await chunk in body {
                received += Int64(chunk.readableBytes)
                if let cutAfter, received >= cutAfter {
                    collector.abandon()  // nothing of it stays, even before the peer notices the cut
                    await cut()
                    throw ConnectionDropped()
                }
                do {
                    try chunk.withUnsafeReadableBytes { try parser.feed($0, into: collector) }
                } catch is MultipartStream.SyntaxError {
                    throw APIError(.badRequest, "Invalid multipart/form-data body.")
                }
            }
            guard collector.sawFile else { throw APIError(.badRequest, "No files were provided with the request.") }
            guard collector.fileComplete else {
                throw APIError(.badRequest, "Invalid multipart/form-data body: the file part is not closed by a boundary.")
            }
            guard collector.written > 0 else { throw APIError(.badRequest, "The uploaded file is empty.") }
            return try collector.finish()
        } catch {
            collector.abandon()
            throw error
        }
    }

    /// `value; a=b; c="d e"` → (`value`, [a: b, c: d e]); parameter names lowercased.
    static func parseHeaderValue(_ header: String) -> (String, [String: String]) {
        var items: [String] = []
        var current = ""
        var quoted = false
        var escaped = false
        for character in header {
            if escaped {
                current.append(character)
                escaped = false
            } else if quoted, character == "\\" {
                escaped = true
            } else if character == "\"" {
                quoted.toggle()
                current.append(character)
            } else if character == ";", !quoted {
                items.append(current)
                current = ""
            } else {
                current.append(character)
            }
        }
        items.append(current)
        let value = items.first?.trimmingCharacters(in: .whitespaces) ?? ""
        var parameters: [String: String] = [:]
        for item in items.dropFirst() {
            let pair = item.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard pair.count == 2 else { continue }
            var text = pair[1]
            if text.count >= 2, text.hasPrefix("\""), text.hasSuffix("\"") { text = String(text.dropFirst().dropLast()) }
            parameters[pair[0].lowercased()] = text
        }
        return (value, parameters)
    }
}

/// The parser's consumer: decides which part is the file, and writes its bytes to disk through
/// SHA-256 as they arrive. Lives inside one `receive` call.
private final class PartCollector: MultipartConsumer {
    let path: String
    let maximumBytes: Int64?
    private var sink: FileSink?
    private var hasher = SHA256()
    private var inFile = false
    private(set) var sawFile = false
    private(set) var fileComplete = false
    private(set) var written: Int64 = 0
    private var filename = ""
    private var contentType = ""

    init(path: String, maximumBytes: Int64?) {
        self.path = path
        self.maximumBytes = maximumBytes
    }

    func partBegins(headers: [(name: String, value: String)]) throws {
        inFile = false
        let disposition = headers.last { $0.name == "content-disposition" }.map { RecordingReceiver.parseHeaderValue($0.value) }
        guard let disposition, disposition.0.lowercased() == "form-data", disposition.1["name"] == "file", !sawFile else { return }
        guard let filename = disposition.1["filename"] else {
            throw APIError(.badRequest, "Invalid input: file - This field was not expected.")
        }
        let type = headers.last { $0.name == "content-type" }?.value ?? ""
        guard type.lowercased().hasPrefix("audio/") else {
            throw APIError(.badRequest, "Invalid file type \(type.isEmpty ? "(no Content-Type)" : "'\(type)'"): a recording must be sent as audio/*, e.g. audio/mpeg.")
        }
        sawFile = true
        inFile = true
        self.filename = filename
        contentType = type
        sink = try FileSink(path: path)
    }

    func partBody(_ bytes: UnsafeRawBufferPointer) throws {
        guard inFile, let sink else { return }
        written += Int64(bytes.count)
        if let maximumBytes, written > maximumBytes {
            throw APIError(.contentTooLarge, "The file is too large: the limit is \(maximumBytes) bytes.")
        }
        hasher.update(bufferPointer: bytes)
        try sink.write(bytes)
    }

    func partEnds() throws {
        if inFile { fileComplete = true }
        inFile = false
    }

    func finish() throws -> ReceivedFile {
        try sink?.close()
        return ReceivedFile(path: path, bytes: written, sha256: hasher.finalize().map { String(format: "%02x", $0) }.joined(),
                            contentType: contentType, filename: filename)
    }

    func abandon() {
        try? sink?.close()
        unlink(path)
    }
}

/// A file written with plain `write(2)` calls (no copy of the bytes).
private final class FileSink {
    private var descriptor: Int32

    init(path: String) throws {
        descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard descriptor >= 0 else { throw APIError(.internalServerError, "An internal server error occurred") }
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let n = posixWrite(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw APIError(.internalServerError, "An internal server error occurred")
            }
            offset += n
        }
    }

    func close() throws {
        guard descriptor >= 0 else { return }
        let result = posixClose(descriptor)
        descriptor = -1
        if result != 0 { throw APIError(.internalServerError, "An internal server error occurred") }
    }

    deinit { if descriptor >= 0 { _ = posixClose(descriptor) } }
}
