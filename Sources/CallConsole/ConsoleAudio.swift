import CallStore
import Foundation
import HTTPTypes
import Hummingbird

/// A part's MP3 from the spool, with HTTP Range (RFC 9110 §14): `bytes=A-B`, `bytes=A-` and
/// `bytes=-N` answer 206 with that slice, a range past the end 416, anything else the whole
/// file. The file is the one the ledger names for the part: nothing in the URL is a path.
enum ConsoleAudio {
    static func serve(_ request: Request, context: some RequestContext, store: any ConsoleStore, key: String, index: Int) async throws -> Response {
        guard let part = try await store.parts(key: key).first(where: { $0.index == index }) else {
            return ConsoleHeaders.message(.notFound, "No such part", "Recording \(key) has no part \(index).")
        }
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: part.spoolPath),
              let size = (attributes[.size] as? NSNumber)?.intValue else {
            return ConsoleHeaders.message(.notFound, "Not in the spool", "Part \(index) of \(key) is no longer in the spool (pruned after its upload, or deleted).")
        }
        var headers = ConsoleHeaders.security
        headers[.contentType] = "audio/mpeg"
        headers[.acceptRanges] = "bytes"
        headers[.cacheControl] = "no-store"
        let range: ClosedRange<Int>
        let status: HTTPResponse.Status
        switch byteRange(request.headers[.range], size: size) {
        case .whole:
            guard size > 0 else {
                headers[.contentLength] = "0"
                return Response(status: .ok, headers: headers)
            }
            range = 0...(size - 1)
            status = .ok
        case .slice(let slice):
            range = slice
            status = .partialContent
            headers[.contentRange] = "bytes \(slice.lowerBound)-\(slice.upperBound)/\(size)"
        case .unsatisfiable:
            headers[.contentRange] = "bytes */\(size)"
            return Response(status: .rangeNotSatisfiable, headers: headers)
        }
        headers[.contentLength] = String(range.count)
        let body = try await FileIO().loadFile(path: part.spoolPath, range: range, context: context)
        return Response(status: status, headers: headers, body: body)
    }

    enum ByteRange: Equatable {
        case whole
        case slice(ClosedRange<Int>)
        case unsatisfiable
    }

    /// What a `Range` header asks of a file of `size` bytes. Several ranges, another unit or a
    /// header that does not parse get the whole file (a server may ignore Range).
    static func byteRange(_ header: String?, size: Int) -> ByteRange {
        guard let header, header.hasPrefix("bytes=") else { return .whole }
        let spec = header.dropFirst("bytes=".count).trimmingCharacters(in: .whitespaces)
        guard !spec.contains(","), let dash = spec.firstIndex(of: "-") else { return .whole }
        let first = spec[..<dash], last = spec[spec.index(after: dash)...]
        if first.isEmpty {
            // The last N bytes.
            guard let n = Int(last), n >= 0 else { return .whole }
            guard n > 0, size > 0 else { return .unsatisfiable }
            return .slice(max(0, size - n)...(size - 1))
        }
        guard let start = Int(first), start >= 0 else { return .whole }
        let end: Int
        if last.isEmpty {
            end = size - 1
        } else {
            guard let given = Int(last), given >= start else { return .whole }
            end = min(given, size - 1)
        }
        guard start < size else { return .unsatisfiable }
        return .slice(start...end)
    }
}
