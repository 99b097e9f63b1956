import Crypto

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An MP3 part that has been written.
public struct EncodedPart: Sendable, Equatable, Codable {
    public let index: Int
    public let path: String
    public let bytes: Int64
    /// Frames the MP3 decodes to (the LAME tag tells decoders to trim delay and padding).
    public let frames: Int64
    public let sampleRate: Int
    public let channels: Int
    /// Lowercase hex SHA-256 of the file's bytes.
    public let sha256: String

    public var seconds: Double { Double(frames) / Double(sampleRate) }

    public init(index: Int, path: String, bytes: Int64, frames: Int64, sampleRate: Int, channels: Int, sha256: String) {
        self.index = index
        self.path = path
        self.bytes = bytes
        self.frames = frames
        self.sampleRate = sampleRate
        self.channels = channels
        self.sha256 = sha256
    }
}

/// Encodes parts of accepted recordings: the second decode pass, feeding a fresh LAME encoder
/// per part (research/audio.md §2.6 A), resampled by libsoxr when the rate changes.
public enum Transcoder {
    /// Decodes `part` of the recording again and writes it as MP3 to `destination`.
    ///
    /// The file appears at `destination` only once complete (written beside it, then renamed), so
    /// an interrupted run never leaves a partial MP3 under the final name. Blocking: call it from
    /// a thread that may block, one part per thread.
    /// - Throws: ``AudioError`` (`encoder_failed`, `output_failed`, `source_changed`, …).
    public static func encodePart(_ part: PartPlan, of analysis: AudioAnalysis, format: OutputFormat,
                                  settings: TranscodeSettings, to destination: String) throws -> EncodedPart {
        guard analysis.isAccepted, let source = analysis.source, let info = analysis.info else {
            throw analysis.error ?? AudioError(.undecodable, path: analysis.path, "the recording was not accepted")
        }
        let shown = analysis.path
        let file = try source.open()
        let reader = BlockReader(file: file, blockFrames: 8192)
        let inChannels = info.channels

        // Position at the part's first frame: exact seek for PCM-family codecs, else decode and
        // discard (compressed codecs' seeks are not guaranteed to be sample-exact).
        if part.startFrame > 0, !(analysis.seeksExactly && file.seek(to: part.startFrame)) {
            var skipped: Int64 = 0
            while skipped < part.startFrame {
                let n = reader.next(limit: Int(min(Int64(reader.blockFrames), part.startFrame - skipped)))
                if n == 0 { break }
                skipped += Int64(n)
            }
            guard skipped == part.startFrame else {
                throw AudioError(.sourceChanged, path: shown, "only \(skipped) frames decoded before part \(part.index + 1), which starts at \(part.startFrame): the file changed since it was validated")
            }
        }

        let sink = try PartSink(format: format, inputRate: info.sampleRate, inputChannels: info.channels,
                                blockFrames: reader.blockFrames, settings: settings, destination: destination,
                                shown: shown, limit: part.outputFrames)
        var remaining = part.endFrame - part.startFrame
        while remaining > 0 {
            let n = reader.next(limit: Int(min(Int64(reader.blockFrames), remaining)))
            if n == 0 { break }
            remaining -= Int64(n)
            // LAME aborts the process on NaN/Inf (S1): every sample is checked on the way in.
            sanitize(reader.buffer, count: n * inChannels)
            try sink.feed(reader.buffer, frames: n)
        }
        guard remaining == 0 else {
            throw AudioError(.sourceChanged, path: shown, "part \(part.index + 1) decoded \(part.endFrame - part.startFrame - remaining) of its \(part.endFrame - part.startFrame) frames: the file changed since it was validated")
        }
        return try sink.finish(index: part.index, outputFrames: part.outputFrames)
    }

    /// NaN and ±Inf become silence; finite values pass (LAME clips large ones itself).
    @inline(__always)
    static func sanitize(_ samples: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        let raw = UnsafeMutableRawPointer(samples)
        let zero = SIMD8<Float>()
        while i + 8 <= count {
            let v = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            let finite = v * zero .== zero  // x·0 is NaN for NaN and ±Inf, 0 otherwise
            if !all(finite) {
                raw.storeBytes(of: v.replacing(with: 0, where: .!finite), toByteOffset: i * 4, as: SIMD8<Float>.self)
            }
            i += 8
        }
        while i < count {
            if !samples[i].isFinite { samples[i] = 0 }
            i += 1
        }
    }

    static func downmix(_ input: UnsafeMutablePointer<Float>, frames: Int, channels: Int,
                        into output: UnsafeMutablePointer<Float>) {
        let scale = 1 / Float(channels)
        for f in 0..<frames {
            var s: Float = 0
            for c in 0..<channels { s += input[f * channels + c] }
            output[f] = s * scale
        }
    }
}

/// The encode half of a part: channel layout, libsoxr, LAME and the writer, fed sanitised blocks.
final class PartSink {
    private let format: OutputFormat
    private let inputChannels: Int
    private let resampler: Resampler?
    private let encoder: LameEncoder
    private let writer: PartWriter
    private let mixed: UnsafeMutablePointer<Float>
    private let shown: String
    /// Output frames not to exceed (nil: no cap, the total is known only at the end).
    private let limit: Int64?
    private(set) var emitted: Int64 = 0

    init(format: OutputFormat, inputRate: Int, inputChannels: Int, blockFrames: Int, settings: TranscodeSettings,
         destination: String, shown: String, limit: Int64?) throws {
        self.format = format
        self.inputChannels = inputChannels
        self.shown = shown
        self.limit = limit
        resampler = format.sampleRate == inputRate ? nil
            : try Resampler(from: inputRate, to: format.sampleRate, channels: format.channels,
                            quality: settings.resampleQuality, path: shown)
        let maxFrames = resampler.map { Int(Double(blockFrames) * $0.ratio) + 2048 } ?? blockFrames
        encoder = try LameEncoder(format: format, maxFrames: max(maxFrames, blockFrames), path: shown)
        writer = try PartWriter(destination: destination, shown: shown)
        mixed = .allocate(capacity: blockFrames * format.channels)
    }

    deinit { mixed.deallocate() }

    private func emit(_ samples: UnsafeMutablePointer<Float>, _ frames: Int) throws {
        let n = limit.map { Int(min(Int64(frames), $0 - emitted)) } ?? frames
        guard n > 0 else { return }
        try encoder.encode(samples, frames: n, path: shown) { try writer.write($0) }
        emitted += Int64(n)
    }

    /// Encodes `frames` sanitised interleaved input frames.
    func feed(_ buffer: UnsafeMutablePointer<Float>, frames n: Int) throws {
        let pcm: UnsafeMutablePointer<Float>
        if inputChannels == format.channels {
            pcm = buffer
        } else {
            Transcoder.downmix(buffer, frames: n, channels: inputChannels, into: mixed)
            pcm = mixed
        }
        if let resampler {
            let produced = try resampler.process(pcm, frames: n, path: shown)
            try emit(resampler.output, produced)
        } else {
            try emit(pcm, n)
        }
    }

    /// Flushes the resampler, pads to exactly `outputFrames`, flushes LAME, writes the tag frame
    /// and moves the file into place.
    func finish(index: Int, outputFrames: Int64) throws -> EncodedPart {
        if let resampler {
            let produced = try resampler.process(nil, frames: 0, path: shown)
            try emit(resampler.output, Int(min(Int64(produced), max(outputFrames - emitted, 0))))
        }
        // libsoxr emits floor(n·out/in + 0.5) frames, which is the plan's count; pad if short.
        if emitted < outputFrames {
            let zeros = UnsafeMutablePointer<Float>.allocate(capacity: 1024 * format.channels)
            defer { zeros.deallocate() }
            zeros.initialize(repeating: 0, count: 1024 * format.channels)
            while emitted < outputFrames { try emit(zeros, Int(min(1024, outputFrames - emitted))) }
        }
        guard emitted == outputFrames else {
            throw AudioError(.encoderFailed, path: shown, "encoded \(emitted) frames where \(outputFrames) were due")
        }
        try encoder.flush(path: shown) { try writer.write($0) }
        let tag = encoder.tagFrame()
        guard !tag.isEmpty else {
            throw AudioError(.encoderFailed, path: shown, "LAME wrote no tag frame; the part would not decode to its exact length")
        }
        let (bytes, digest) = try writer.finish(tag: tag)
        return EncodedPart(index: index, path: writer.destination, bytes: bytes, frames: emitted,
                           sampleRate: format.sampleRate, channels: format.channels, sha256: digest)
    }
}

@available(*, unavailable)
extension PartSink: Sendable {}

/// Writes one part beside its destination, patches the tag frame in, hashes, and renames.
final class PartWriter {
    let destination: String
    private let temporary: String
    private let shown: String
    private let fd: Int32
    private var closed = false
    private var buffer: [UInt8] = []
    private var written: Int64 = 0
    private var done = false

    init(destination: String, shown: String) throws {
        self.destination = destination
        self.shown = shown
        let slash = destination.lastIndex(of: "/")
        let dir = slash.map { String(destination[..<$0]) } ?? "."
        let base = slash.map { String(destination[destination.index(after: $0)...]) } ?? destination
        temporary = "\(dir)/.\(base).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp"
        fd = open(temporary, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw Self.writeError(errno, shown: shown, "cannot create \(temporary)") }
        buffer.reserveCapacity(1 << 15)
    }

    deinit {
        if !closed { close(fd) }
        if !done { unlink(temporary) }
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        buffer.append(contentsOf: bytes)
        if buffer.count >= 1 << 15 { try drain() }
    }

    private func drain() throws {
        try buffer.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw Self.writeError(errno, shown: shown, "cannot write \(destination)")
                }
                offset += n
            }
        }
        written += Int64(buffer.count)
        buffer.removeAll(keepingCapacity: true)
    }

    /// Writes the tag over the placeholder frame, hashes the file, renames it into place.
    func finish(tag: [UInt8]) throws -> (Int64, String) {
        try drain()
        let ok = tag.withUnsafeBytes { pwrite(fd, $0.baseAddress!, $0.count, 0) == $0.count }
        guard ok else { throw Self.writeError(errno, shown: shown, "cannot write the LAME tag to \(destination)") }
        var hash = SHA256()
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        var offset: Int64 = 0
        while offset < written {
            let n = chunk.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, $0.count, off_t(offset)) }
            guard n > 0 else { throw AudioError(.outputFailed, path: shown, "cannot re-read \(destination) to hash it") }
            chunk.withUnsafeBytes { hash.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            offset += Int64(n)
        }
        // Closed before it takes the final name: a file system that reports a full disk only
        // when the file is closed (NFS) says so here, and a part that exists is whole.
        closed = true
        guard close(fd) == 0 else { throw Self.writeError(errno, shown: shown, "cannot write \(destination)") }
        guard rename(temporary, destination) == 0 else { throw Self.writeError(errno, shown: shown, "cannot rename into \(destination)") }
        done = true
        let digest = hash.finalize().map { byte in
            let s = String(byte, radix: 16)
            return s.count == 1 ? "0" + s : s
        }.joined()
        return (written, digest)
    }
}

extension PartWriter {
    /// `disk_full` when the disk or quota is full, else `output_failed`; the reason ends with the
    /// system's words for `code`.
    static func writeError(_ code: Int32, shown: String, _ what: String) -> AudioError {
        let reason = "\(what): \(String(cString: strerror(code)))"
        return AudioError(code == ENOSPC || code == EDQUOT ? .diskFull : .outputFailed, path: shown, reason)
    }
}

@available(*, unavailable)
extension PartWriter: Sendable {}
