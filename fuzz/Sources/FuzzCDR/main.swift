import CallSources
import Foundation
import FuzzSupport

/// CDR exports (Asterisk Master.csv, FreePBX and FusionPBX CSV), as the file the tailer reads:
/// - read whole, or tailed in small reads from each `nextOffset`, the rows and problems are the same;
/// - the CSV records are the same whatever the reader's chunk size (a record split across reads);
/// - the rows found give call facts for a recording named after them.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCDR(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = FuzzInput(data, size)
    let path = ScratchFile.holding(input.bytes)
    // Each read allocates the reader's 1 MiB chunk: a few hundred bytes a tailed read keeps the
    // harness at thousands of inputs a second while still cutting files mid-row.
    let step = 128 << (size % 4)

    // CSV records: one read of the whole file against reads of 16 to 32 bytes (a sixteenth of the
    // file when that is more: each read scans the record so far again, and 4 KB in 16-byte reads
    // held the harness near a thousand inputs a second).
    let big = records(path, chunkSize: size + 16), small = records(path, chunkSize: max(16 + size % 17, size / 16))
    check(big == small, "the CSV records depend on the reader's chunk size")

    let whole: CDRChunk
    do { whole = try CDRFile.read(path: path, from: 0, kind: nil, header: nil) } catch {
        check(error.code == CDRError.unknownKind, "unexpected \(error.code)")
        return 0
    }
    var offset: Int64 = 0, kind: CDRKind?, header: [String]?
    var rows: [CDRRow] = [], problems: [CDRError] = []
    while true {
        let chunk: CDRChunk
        do { chunk = try CDRFile.read(path: path, from: offset, kind: kind, header: header, maxBytes: step) } catch {
            fatalError("a tailed read failed where the whole read did not: \(error)")
        }
        rows += chunk.rows
        problems += chunk.problems
        guard chunk.nextOffset != offset else { break }
        (offset, kind, header) = (chunk.nextOffset, chunk.kind, chunk.header)
    }
    check(rows == whole.rows && problems == whole.problems, "tailed reads differ from one whole read")

    for row in whole.rows.prefix(3) {
        var local: LocalDateTime?
        if case .local(let time) = row.start { local = time }
        let name = NameFacts(callID: row.uniqueid ?? row.linkedid ?? "1772000000.1", from: row.source, to: row.destination,
                             localStart: local, stem: row.recordingStem ?? "in-100-200-20260304-101530-1772000000.1")
        _ = CallAssembly.fromCDR(name: name, rows: whole.rows, settings: Fixed.settings)
        _ = CallAssembly.ambiguity(name: name, rows: whole.rows)
    }
    return 0
}

func records(_ path: String, chunkSize: Int) -> [CSVRecord] {
    guard let reader = try? CSVReader(path: path, chunkSize: chunkSize) else { fatalError("cannot open \(path)") }
    var all: [CSVRecord] = []
    while let record = try? reader.next() { all.append(record) }
    return all
}

/// main.swift's globals would never be set (libFuzzer's main runs, not this file's top level):
/// a static is set on first use.
enum Fixed {
    static let settings = SourceSettings(kind: .freepbx, root: "/pbx", timeZone: TimeZone(identifier: "Europe/Berlin")!)
}
