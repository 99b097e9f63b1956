import CallTesting
import Foundation

/// About 20 speech templates, rendered once with CallTesting's SyntheticAudio (8 kHz PCM16
/// mono, as Asterisk's `wav` writes): each call streams one, looped, so nothing is synthesised
/// while calls run (the writer shares the machine with callrec in the benchmark).
struct AudioTemplates {
    static let count = 20
    static let sampleRate = 8000
    static let bytesPerSecond = sampleRate * 2
    /// Seconds per template; every talk/pause period below divides it, so a loop has no seam.
    static let seconds = 30

    /// The PCM bytes of each template (no header).
    let pcm: [[UInt8]]

    init() throws {
        let periods: [(Double, Double)] = [(7, 3), (4, 1), (6, 4), (3, 2), (8, 2)]
        let dir = NSTemporaryDirectory() + "callrec-pbx-sim-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        pcm = try (0..<Self.count).map { i in
            let (talk, pause) = periods[i % periods.count]
            let path = "\(dir)/t\(i).wav"
            try SyntheticAudio.write(.speech(talk: talk, pause: pause, level: 0.2 + 0.05 * Float(i / periods.count)), seconds: Double(Self.seconds),
                                     sampleRate: Self.sampleRate, format: .wavPCM16, to: path)
            return try Self.dataChunk(of: Data(contentsOf: URL(fileURLWithPath: path)))
        }
    }

    /// The bytes of a RIFF/WAVE file's `data` chunk.
    static func dataChunk(of file: Data) throws -> [UInt8] {
        let bytes = [UInt8](file)
        func u32(_ at: Int) -> Int { Int(bytes[at]) | Int(bytes[at + 1]) << 8 | Int(bytes[at + 2]) << 16 | Int(bytes[at + 3]) << 24 }
        var at = 12
        while at + 8 <= bytes.count {
            let size = u32(at + 4)
            if bytes[at..<(at + 4)].elementsEqual("data".utf8) { return Array(bytes[(at + 8)..<min(bytes.count, at + 8 + size)]) }
            at += 8 + size + (size & 1)
        }
        throw SimError("a synthetic template has no data chunk")
    }

    /// Second `k` of template `t` (looped).
    func second(_ k: Int, of t: Int) -> ArraySlice<UInt8> {
        let start = (k % Self.seconds) * Self.bytesPerSecond
        return pcm[t][start..<(start + Self.bytesPerSecond)]
    }

    /// The last second of a call: the template's, with a faint pattern only this call has, so no
    /// two recordings have the same bytes.
    func tail(_ k: Int, of t: Int, call: Int, seed: UInt64) -> [UInt8] {
        var bytes = Array(second(k, of: t))
        var random = SimRandom(seed: seed ^ (UInt64(call) &* 0x9E37_79B9_7F4A_7C15))
        for i in stride(from: 0, to: bytes.count, by: 2) {
            let sample = Int16(bitPattern: UInt16(bytes[i]) | UInt16(bytes[i + 1]) << 8)
            let nudged = sample &+ Int16(Int(random.next() % 7) - 3)
            bytes[i] = UInt8(truncatingIfNeeded: UInt16(bitPattern: nudged))
            bytes[i + 1] = UInt8(truncatingIfNeeded: UInt16(bitPattern: nudged) >> 8)
        }
        return bytes
    }

    /// A canonical 44-byte PCM16 mono WAV header for `dataBytes` of samples (0 while recording,
    /// as Asterisk leaves it until it closes the file).
    static func header(dataBytes: Int) -> [UInt8] {
        func le32(_ v: Int) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
        func le16(_ v: Int) -> [UInt8] { (0..<2).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
        return Array("RIFF".utf8) + le32(36 + dataBytes) + Array("WAVE".utf8) + Array("fmt ".utf8) + le32(16) + le16(1) + le16(1)
            + le32(sampleRate) + le32(bytesPerSecond) + le16(2) + le16(16) + Array("data".utf8) + le32(dataBytes)
    }
}
