import CallTesting
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// One line of the manifest (JSONL): a call's ground truth, what callrec should make of it, and
/// where and when its recording was written.
struct ManifestEntry: Encodable {
    var callId: String
    var index: Int
    var layout: String
    /// The recording's final path relative to the root (the `.mp3` when converted); nil when the
    /// PBX recorded nothing (3CX, a call nobody answered).
    var path: String?
    var stem: String?
    var direction: String
    var `extension`: String
    var otherExtension: String?
    /// The other party in E.164, and as the PBX wrote it.
    var other: String?
    var otherNational: String?
    /// The company's number (the DID dialled in, the caller id sent out) in E.164.
    var company: String
    /// The caller id name an inbound call carried (odd-names: commas, quotes, brackets, unicode).
    var callerName: String?
    var answered: Bool
    /// The call log's outcome callrec should give it.
    var outcome: String
    /// Whether callrec logs it with its default policy (no `--log`), else why not.
    var logged: Bool
    var skipReason: String?
    /// UTC instants (CDR start, answer, hangup) and the PBX's local start.
    var start: String
    var answer: String?
    var end: String
    var billsec: Int
    var duration: Int
    var localStart: String
    var utcOffset: Int
    var audioSeconds: Int
    var ringGroup: Bool
    var lateCdr: Bool
    /// Seconds after hangup the CDR row was appended (0: at hangup).
    var cdrDelay: Double
    var converted: Bool
    /// When the recording was closed: the real clock in a live run, the simulated one with `--batch`.
    var closedAt: String
}

/// Writes a plan's calls as the PBX would: each recording opened when recording starts,
/// appended a second at a time, closed (header finalised) at hangup, the CDR appended then
/// (or later), converted afterwards. `--batch` runs the same events without waiting, so its
/// tree is the live run's.
final class Simulation {
    enum Kind { case open, append(Int), close, cdr }
    struct Event {
        var time: Double
        var order: Int
        var call: Int
        var kind: Kind
    }

    let plan: CallPlan
    let renderer: Renderer
    let templates: AudioTemplates
    let root: String
    let start: Date
    let seed: UInt64
    let batch: Bool
    let quirks: Quirks
    let exportCDR: Bool
    let lame: String?
    var manifest: FileHandle?

    private var heap: [Event] = []
    private var order = 0
    private var files: [Int: Int32] = [:]
    private var madeDirectories: Set<String> = []
    private var cdrFD: Int32 = -1
    private var exportRows: [(call: Int, file: String)] = []
    private var exportDirty = false
    private var lastExportWrite = 0.0
    private var pending: [Int] = []
    private var running: [(process: Process, call: Int)] = []
    private(set) var counts = (files: 0, cdrRows: 0, converted: 0)

    init(plan: CallPlan, renderer: Renderer, templates: AudioTemplates, root: String, start: Date, seed: UInt64, batch: Bool, quirks: Quirks,
         exportCDR: Bool, manifest: FileHandle?) throws {
        self.plan = plan
        self.renderer = renderer
        self.templates = templates
        self.root = root
        self.start = start
        self.seed = seed
        self.batch = batch
        self.quirks = quirks
        self.exportCDR = exportCDR && renderer.layout == .freepbx
        self.manifest = manifest
        lame = which("lame")
        if plan.calls.contains(where: \.convert), lame == nil { throw SimError("--quirks wav2mp3 needs lame (apt-get install lame)") }
    }

    func run() throws {
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        if let cdr = renderer.cdrFile {
            cdrFD = open(root + "/" + cdr, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
            guard cdrFD >= 0 else { throw SimError("cannot open \(root)/\(cdr): \(String(cString: strerror(errno)))") }
            if let header = renderer.cdrHeader, lseek(cdrFD, 0, SEEK_END) == 0 { try write(cdrFD, Array(header.utf8), "\(cdr)") }
        }
        if exportCDR { try writeExport() }
        for call in plan.calls {
            if renderer.records(call) { push(call.openOffset, call.index, .open) } else { push(call.closeOffset, call.index, .close) }
        }
        let t0 = ContinuousClock.now
        while let event = pop() {
            if !batch {
                while true {
                    reapConversions(elapsed: (ContinuousClock.now - t0).inSeconds)
                    let wait = event.time - (ContinuousClock.now - t0).inSeconds
                    if wait <= 0 { break }
                    usleep(useconds_t(min(wait, running.isEmpty ? 1 : 0.05) * 1_000_000))
                }
            }
            try handle(event)
        }
        while !running.isEmpty || !pending.isEmpty {
            reapConversions(elapsed: .infinity)
            usleep(20000)
        }
        if exportDirty { try writeExport() }
        if cdrFD >= 0 { close(cdrFD) }
    }

    private func push(_ time: Double, _ call: Int, _ kind: Kind) {
        heap.append(Event(time: time, order: order, call: call, kind: kind))
        order += 1
        var i = heap.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard Self.before(heap[i], heap[parent]) else { break }
            heap.swapAt(i, parent)
            i = parent
        }
    }

    private func pop() -> Event? {
        guard !heap.isEmpty else { return nil }
        let top = heap[0]
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < heap.count, Self.before(heap[l], heap[m]) { m = l }
                if r < heap.count, Self.before(heap[r], heap[m]) { m = r }
                if m == i { break }
                heap.swapAt(i, m)
                i = m
            }
        }
        return top
    }

    private static func before(_ a: Event, _ b: Event) -> Bool { (a.time, a.order) < (b.time, b.order) }

    private func handle(_ event: Event) throws {
        let call = plan.calls[event.call]
        switch event.kind {
        case .open:
            let path = renderer.path(call)
            let dir = (path as NSString).deletingLastPathComponent
            if !madeDirectories.contains(dir) {
                try FileManager.default.createDirectory(atPath: root + "/" + dir, withIntermediateDirectories: true)
                madeDirectories.insert(dir)
            }
            // O_EXCL: the simulator never writes over a file it did not create.
            let fd = open(root + "/" + path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw SimError("cannot create \(root)/\(path): \(String(cString: strerror(errno)))") }
            files[call.index] = fd
            counts.files += 1
            try write(fd, AudioTemplates.header(dataBytes: 0), path)
            if call.audioSeconds > 1 { push(call.openOffset + 1, call.index, .append(0)) } else { push(call.closeOffset, call.index, .close) }
        case .append(let k):
            try templates.second(k, of: call.template).withUnsafeBytes { try write(files[call.index]!, $0, renderer.path(call)) }
            if k + 2 < call.audioSeconds { push(call.openOffset + Double(k + 2), call.index, .append(k + 1)) } else { push(call.closeOffset, call.index, .close) }
        case .close:
            if let fd = files.removeValue(forKey: call.index) {
                let path = renderer.path(call)
                try write(fd, templates.tail(call.audioSeconds - 1, of: call.template, call: call.index, seed: seed), path)
                let header = AudioTemplates.header(dataBytes: call.audioSeconds * AudioTemplates.bytesPerSecond)
                guard pwrite(fd, header, header.count, 0) == header.count else { throw SimError("cannot finish \(path): \(String(cString: strerror(errno)))") }
                if batch { stamp(fd: fd, offset: call.closeOffset) }
                close(fd)
            }
            try writeManifest(call)
            if renderer.cdrFile != nil {
                if call.lateCDR { push(call.closeOffset + quirks.lateDelay, call.index, .cdr) } else { try appendCDR(call) }
            }
            if call.convert, renderer.records(call) {
                if batch { try convertNow(call) } else { pending.append(call.index) }
            }
        case .cdr:
            try appendCDR(call)
        }
    }

    private func appendCDR(_ call: SimCall) throws {
        guard let rows = renderer.cdrRows(call) else { return }
        try write(cdrFD, Array(rows.utf8), renderer.cdrFile!)
        counts.cdrRows += rows.split(separator: "\n").count
        if exportCDR {
            exportRows.append((call.index, (renderer.path(call) as NSString).lastPathComponent))
            exportDirty = true
        }
    }

    /// A WAV→MP3 post script: `lame`, then the WAV deleted and the export's `recordingfile` rewritten.
    private func conversionArguments(_ call: SimCall) -> [String] {
        ["--quiet", "--noreplaygain", "-b", "32", "-m", "m", root + "/" + renderer.path(call), root + "/" + renderer.path(call, ext: "mp3")]
    }

    private func convertNow(_ call: SimCall) throws {
        let result = try runProcessBlocking(lame!, conversionArguments(call))
        guard result.status == 0 else { throw SimError("lame failed on \(renderer.path(call)): \(result.stderr)") }
        try converted(call)
        let fd = open(root + "/" + renderer.path(call, ext: "mp3"), O_WRONLY | O_CLOEXEC)
        if fd >= 0 {
            stamp(fd: fd, offset: call.closeOffset)
            close(fd)
        }
    }

    private func converted(_ call: SimCall) throws {
        unlink(root + "/" + renderer.path(call))
        counts.converted += 1
        if let i = exportRows.firstIndex(where: { $0.call == call.index }) {
            exportRows[i].file = (renderer.path(call, ext: "mp3") as NSString).lastPathComponent
            exportDirty = true
        }
    }

    /// Live runs: at most two `lame` at a time (the writer shares the cores with callrec); the
    /// export is rewritten at most once a second.
    private func reapConversions(elapsed: Double) {
        running.removeAll { entry in
            guard !entry.process.isRunning else { return false }
            if entry.process.terminationStatus == 0 {
                try? converted(plan.calls[entry.call])
            } else {
                FileHandle.standardError.write(Data("callrec-pbx-sim: lame failed on \(renderer.path(plan.calls[entry.call]))\n".utf8))
            }
            return true
        }
        while running.count < 2, !pending.isEmpty {
            let call = plan.calls[pending.removeFirst()]
            let process = Process()
            process.executableURL = URL(fileURLWithPath: lame!)
            process.arguments = conversionArguments(call)
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            if (try? process.run()) != nil { running.append((process, call.index)) }
        }
        if exportDirty, elapsed - lastExportWrite >= 1 {
            try? writeExport()
            lastExportWrite = elapsed.isFinite ? elapsed : lastExportWrite
        }
    }

    /// The FreePBX export, rewritten whole (a temporary file renamed over it, as an export job does).
    private func writeExport() throws {
        var text = Renderer.exportHeader
        for row in exportRows { text += renderer.exportRow(plan.calls[row.call], recordingFile: row.file) }
        let path = root + "/cdr.csv"
        try Data(text.utf8).write(to: URL(fileURLWithPath: path + ".tmp"))
        guard rename(path + ".tmp", path) == 0 else { throw SimError("cannot rename \(path).tmp: \(String(cString: strerror(errno)))") }
        exportDirty = false
    }

    private func writeManifest(_ call: SimCall) throws {
        guard let manifest else { return }
        let local = renderer.clock.local(call.startEpoch)
        let recorded = renderer.records(call)
        let path = recorded ? renderer.path(call, ext: call.convert ? "mp3" : "wav") : nil
        let skip: String? = call.direction == .internal ? "internal_call" : (call.answered ? nil : "missed_call")
        let entry = ManifestEntry(
            callId: renderer.callID(call), index: call.index, layout: renderer.layout.rawValue, path: path,
            stem: path.map { (($0 as NSString).lastPathComponent as NSString).deletingPathExtension }, direction: call.direction.rawValue,
            extension: call.agent, otherExtension: call.otherExtension, other: call.other?.e164, otherNational: call.other?.national,
            company: call.company.e164, callerName: renderer.callerName(call), answered: call.answered, outcome: call.answered ? "connected" : "no_answer",
            logged: skip == nil, skipReason: skip, start: isoUTC(epoch(call.startEpoch)), answer: call.answered ? isoUTC(epoch(call.answerEpoch)) : nil,
            end: isoUTC(epoch(call.endEpoch)), billsec: call.talk, duration: call.endEpoch - call.startEpoch, localStart: local.stamp,
            utcOffset: renderer.clock.offset(call.startEpoch), audioSeconds: call.audioSeconds, ringGroup: call.isRingGroup, lateCdr: call.lateCDR,
            cdrDelay: call.lateCDR ? quirks.lateDelay : 0, converted: call.convert && recorded,
            closedAt: isoUTC(batch ? start.addingTimeInterval(call.closeOffset) : Date(), milliseconds: true))
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        manifest.write(try encoder.encode(entry) + Data("\n".utf8))
    }

    private func epoch(_ seconds: Int) -> Date { Date(timeIntervalSince1970: TimeInterval(seconds)) }

    /// Batch trees carry the simulated close as their mtime (what a live PBX's files would show).
    private func stamp(fd: Int32, offset: Double) {
        let t = start.addingTimeInterval(offset).timeIntervalSince1970
        var times = [timespec(tv_sec: Int(t), tv_nsec: 0), timespec(tv_sec: Int(t), tv_nsec: 0)]
        _ = futimens(fd, &times)
    }

    private func write(_ fd: Int32, _ bytes: [UInt8], _ what: String) throws {
        try bytes.withUnsafeBytes { try write(fd, $0, what) }
    }

    private func write(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, _ what: String) throws {
        var done = 0
        while done < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { throw SimError("cannot write \(what): \(String(cString: strerror(errno)))") }
            done += n
        }
    }
}

extension Duration {
    var inSeconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
