public import CallSources
import CallStore
import Foundation
import Logging

// On Linux the clang importer may attribute `stat` and its fields to Dispatch's C module, which
// read <sys/stat.h> first; MemberImportVisibility then wants that module imported by name.
#if canImport(CDispatch)
import CDispatch
#endif

/// A CDR file that cannot be read in (of no known kind, unreadable): the file and why.
public struct CDRIngestError: Error, Sendable, CustomStringConvertible {
    public var underlying: CDRError
    public var description: String { underlying.description }
}

extension SourceIntake {
    /// Reads the new rows of every CDR file and wakes the recordings that waited for them.
    /// Returns how many rows were read.
    ///
    /// Each file is tailed from its cursor while it is the same file (device and inode) and no
    /// shorter; a rotated, replaced or truncated file is read again from the start (the rows'
    /// keys dedup what was read before). The rows and the cursor go in one commit, whose
    /// compare-and-set on the cursor keeps two readers from both committing the same bytes.
    public func ingestCDRs() async throws -> Int {
        var total = 0
        for path in settings.cdrFiles { total += try await ingest(cdr: Self.resolve(path)) }
        return total
    }

    private func ingest(cdr path: String) async throws -> Int {
        var st = stat()
        guard stat(path, &st) == 0 else {
            logger.warning("cannot read the CDR file", metadata: ["cdr": "\(path)", "error": "\(String(cString: strerror(errno)))"])
            return 0
        }
        let device = UInt64(st.st_dev), inode = UInt64(st.st_ino), size = Int64(st.st_size)
        let cursor = try await store.cdrCursor(pbx: settings.pbx, path: path)
        var offset: Int64 = 0
        var kind: CDRKind?
        var header: [String]?
        if let cursor, cursor.device == device, cursor.inode == inode, size >= cursor.offset {
            if size == cursor.offset { return 0 }
            offset = cursor.offset
            kind = CDRKind(rawValue: cursor.kind)
            header = cursor.header.map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        }
        let chunk: CDRChunk
        do { chunk = try CDRFile.read(path: path, from: offset, kind: kind, header: header) } catch {
            throw CDRIngestError(underlying: error)
        }
        for problem in chunk.problems { logger.warning("CDR row not read", metadata: ["cdr": "\(problem)"]) }
        if chunk.nextOffset == offset, cursor != nil { return 0 }
        let rows = chunk.rows.map(stored)
        let next = CDRCursor(pbx: settings.pbx, path: path, device: device, inode: inode, offset: chunk.nextOffset, kind: chunk.kind.rawValue,
                             header: chunk.header?.joined(separator: ","))
        do {
            try await store.commit([.insertCDRRows(rows), .putCDRCursor(next, expectedOffset: cursor?.offset)])
        } catch let error as StoreError where error.code == .conflict {
            // Another reader committed these bytes first: its rows are in.
            logger.debug("CDR file read by another process meanwhile", metadata: ["cdr": "\(path)"])
            return 0
        }
        try await wake(for: chunk.rows)
        logger.debug("CDR rows read", metadata: ["cdr": "\(path)", "rows": "\(rows.count)"])
        return rows.count
    }

    /// Makes due the transcode jobs of the recordings whose call a row names: their identity is
    /// the call id (D6), which for FreePBX and FusionPBX is the row's uniqueid (or its linkedid).
    private func wake(for rows: [CDRRow]) async throws {
        let ids = Set(rows.flatMap { [$0.uniqueid, $0.linkedid].compactMap { $0 }.filter { !$0.isEmpty } })
        let keys = ids.map { "transcode:" + SourceIdentity.key(pbx: settings.pbx, callID: $0) }.sorted()
        var start = 0
        while start < keys.count {
            let end = min(start + 500, keys.count)
            try await store.commit([.wakeJobs(uniqueKeys: Array(keys[start..<end]))])
            start = end
        }
    }

    /// A row as the ledger keeps it: its keys, and the row itself as JSON.
    private func stored(_ row: CDRRow) -> StoredCDRRow {
        StoredCDRRow(pbx: settings.pbx, rowKey: row.rowKey, uniqueid: row.uniqueid, linkedid: row.linkedid, stem: row.recordingStem,
                     day: row.dayKey, document: String(decoding: (try? SourceMetadata.encoder.encode(row)) ?? Data("{}".utf8), as: UTF8.self),
                     ingestedAt: settle.now())
    }
}
