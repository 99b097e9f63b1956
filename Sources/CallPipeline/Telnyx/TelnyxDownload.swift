import AsyncHTTPClient
import CallStore
import CallSupport
import Crypto
import Foundation
import NIOCore
import NIOHTTP1

/// One download of a Telnyx recording's (pre-signed) link into the spool: streamed into
/// `<path>.part` (created exclusively, so never a file callrec did not create), hashed while it
/// streams, fsynced, then renamed over `path`. Nothing but the link is sent: no API key.
struct TelnyxDownload: Sendable {
    let http: HTTPClient
    /// The whole download's deadline.
    let timeout: Duration
    /// Bytes beyond this make the recording fail (no telephone call is that long).
    let maxBytes: Int64

    /// What was written.
    struct Result: Sendable, Hashable {
        var bytes: Int64
        var sha256: String
    }

    /// Why a download failed.
    enum Failure: Error, Sendable, CustomStringConvertible {
        /// The link is no good any more (403/404/410, an "expired" answer, no connection, a
        /// timeout): a fresh one from the listing may work.
        case link(String)
        /// The host is there but failing (429, 5xx): try again later.
        case transient(String)
        /// The spool's disk is full.
        case diskFull(String)
        /// More than ``maxBytes``.
        case tooLarge(String)
        /// The spool cannot be written (not a full disk).
        case spool(String)

        var description: String {
            switch self {
            case .link(let m), .transient(let m), .diskFull(let m), .tooLarge(let m), .spool(let m): m
            }
        }
    }

    /// The link as messages show it: without its query (a pre-signed link's signature).
    static func shown(_ url: String) -> String {
        String(url.split(separator: "?", maxSplits: 1).first ?? "")
    }

    /// Downloads `url` to `path` (replacing a file callrec downloaded there before).
    func download(_ url: String, to path: String) async throws(Failure) -> Result {
        let shown = Self.shown(url)
        let part = path + ".part"
        let directory = (path as NSString).deletingLastPathComponent
        do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            throw isDiskFull(error) ? .diskFull("cannot create \(directory): \(DiskSpace.fullMessage(directory))")
                : .spool("cannot create \(directory): \(error.localizedDescription)")
        }
        let response: HTTPClientResponse
        do {
            response = try await http.execute(HTTPClientRequest(url: url), timeout: .milliseconds(Int64(timeout.seconds * 1000)))
        } catch {
            throw .link("\(shown): \(error)")
        }
        guard (200..<300).contains(response.status.code) else {
            let status = Int(response.status.code)
            let body = (try? await response.body.collect(upTo: 4096)).map { String(buffer: $0) } ?? ""
            let expired = body.localizedCaseInsensitiveContains("expired") ? " (expired)" : ""
            let message = "\(shown) answered HTTP \(status)\(expired)"
            if status == 429 || status >= 500, expired.isEmpty { throw .transient(message) }
            throw .link(message)
        }
        if let length = response.headers.first(name: "content-length").flatMap(Int64.init), length > maxBytes {
            throw .tooLarge("\(shown) is \(length) bytes, more than the \(maxBytes) a recording may have")
        }
        // A `.part` left by a run that died is ours (the spool's telnyx folder is callrec's).
        unlink(part)
        let fd = open(part, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw Self.writeFailure(errno, "cannot create \(part)", directory) }
        var closed = false
        defer {
            if !closed { close(fd) }
        }
        var hash = SHA256()
        var bytes: Int64 = 0
        do {
            for try await buffer in response.body {
                bytes += Int64(buffer.readableBytes)
                if bytes > maxBytes {
                    unlink(part)
                    throw Failure.tooLarge("\(shown) sends more than the \(maxBytes) bytes a recording may have")
                }
                try buffer.withUnsafeReadableBytes { raw throws(Failure) in
                    hash.update(bufferPointer: raw)
                    var offset = 0
                    while offset < raw.count {
                        let written = write(fd, raw.baseAddress! + offset, raw.count - offset)
                        if written < 0 {
                            if errno == EINTR { continue }
                            throw Self.writeFailure(errno, "cannot write \(part)", directory)
                        }
                        offset += written
                    }
                }
            }
        } catch let failure as Failure {
            unlink(part)
            throw failure
        } catch {
            unlink(part)
            throw .link("\(shown): the download broke off after \(bytes) bytes: \(error)")
        }
        if fsync(fd) != 0 {
            let code = errno
            unlink(part)
            throw Self.writeFailure(code, "cannot sync \(part)", directory)
        }
        closed = true
        close(fd)
        if rename(part, path) != 0 {
            let code = errno
            unlink(part)
            throw Self.writeFailure(code, "cannot rename \(part) to \(path)", directory)
        }
        // The rename itself is durable once the folder is.
        let folder = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if folder >= 0 {
            _ = fsync(folder)
            close(folder)
        }
        return Result(bytes: bytes, sha256: lowercaseHex(hash.finalize()))
    }

    private static func writeFailure(_ code: Int32, _ what: String, _ directory: String) -> Failure {
        DiskSpace.isFull(errno: code) ? .diskFull("\(what): \(DiskSpace.fullMessage(directory))")
            : .spool("\(what): \(String(cString: strerror(code)))")
    }

    /// The SHA-256 of the file at `path` (nil when it cannot be read): whether a download that
    /// finished before a crash is still there.
    static func sha256(ofFileAt path: String) -> String? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        var hash = SHA256()
        do {
            // nil (or empty) at the end of the file.
            while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
                hash.update(data: chunk)
            }
        } catch {
            return nil
        }
        return lowercaseHex(hash.finalize())
    }
}
