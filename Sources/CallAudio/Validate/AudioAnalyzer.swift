#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The result of decoding and validating one recording in a single pass.
public struct AudioAnalysis: Sendable {
    /// The path as the caller wants it shown (relative to the scanned directory, usually).
    public let path: String
    /// Nil when the file could not even be opened.
    public let info: AudioInfo?
    /// Why the recording is rejected; nil when it may be transcoded.
    public let error: AudioError?
    public let warnings: [AudioWarning]
    public let stats: SignalStats?
    public let envelope: Envelope?

    let source: SourcePlan?
    /// Whether `sf_seek` lands exactly for this codec (PCM family), so parts can start decoding at
    /// their first frame instead of decoding and discarding what comes before.
    let seeksExactly: Bool

    public var isAccepted: Bool { error == nil }
}

/// Decodes and validates recordings (research/audio.md §7.2), in one streaming pass.
public enum AudioAnalyzer {
    /// Decodes `path` once, in fixed-size blocks, and applies every validation rule.
    ///
    /// Never throws and never aborts: whatever the bytes, the answer is an ``AudioAnalysis`` whose
    /// ``AudioAnalysis/error`` says why the recording is rejected, if it is.
    /// - Parameters:
    ///   - path: the file to read.
    ///   - displayPath: how messages name the file (defaults to `path`).
    ///   - readingAtMost: when set, the file is read as though it ended after this many bytes:
    ///     a cheap check of what a large file's beginning holds (a cut MP3 still decodes; a cut
    ///     WAV reads as truncated).
    public static func analyze(
        path: String,
        displayPath: String? = nil,
        configuration: ValidationConfiguration = .init(),
        readingAtMost: Int64? = nil
    ) -> AudioAnalysis {
        analyze(path: path, displayPath: displayPath, configuration: configuration, byteLimit: readingAtMost, prepare: nil)
    }

    /// The decode pass with a hook: once the header has passed its checks, `prepare` may return
    /// a consumer that receives every decoded (and sanitised) block, so one decode can feed both
    /// validation and an encoder.
    static func analyze(
        path: String,
        displayPath: String?,
        configuration: ValidationConfiguration,
        byteLimit: Int64? = nil,
        prepare: ((AudioInfo) -> (any BlockConsumer)?)?
    ) -> AudioAnalysis {
        let shown = displayPath ?? path
        var warnings: [AudioWarning] = []
        func reject(_ error: AudioError, info: AudioInfo? = nil) -> AudioAnalysis {
            AudioAnalysis(path: shown, info: info, error: error, warnings: warnings, stats: nil, envelope: nil,
                          source: nil, seeksExactly: false)
        }

        // 1. Bytes and container, before libsndfile sees anything.
        let bytes: FileBytes
        do { bytes = try FileBytes(path: path, limit: byteLimit) } catch {
            return reject(AudioError(error.code, path: shown, error.reason))
        }
        if bytes.length < 44 {
            let what = bytes.length == 0 ? "the file is empty (0 bytes)" : "only \(bytes.length) bytes: too small to hold any audio"
            return reject(AudioError(.emptyFile, path: shown, what))
        }
        let head = bytes.head(16)
        guard Container.sniff(head) != nil else {
            return reject(AudioError(.unsupportedContainer, path: shown, describeUnknown(head)))
        }

        // 2. Open, salvaging a WAV whose recorder never wrote the data size.
        var patches: [SourcePlan.Patch] = []
        if let fix = Container.wavSizePatches(bytes) {
            patches = fix.map { SourcePlan.Patch(offset: $0.offset, bytes: $0.bytes) }
            warnings.append(AudioWarning(.salvagedHeader, "\(shown): the WAV header declares no audio data (the recorder did not finalise it); read \(fix[1].bytes.withUnsafeBytes { $0.load(as: UInt32.self) }) bytes of audio that follow it"))
        }
        let plan = SourcePlan(path: path, displayPath: shown, patches: patches, byteLimit: byteLimit)
        let file: SndFile
        do { file = try plan.open() } catch {
            return reject(error)
        }

        // 3. Allow-lists and plausibility of what the header says.
        guard file.isAllowedContainer else {
            return reject(AudioError(.unsupportedContainer, path: shown, "container \(file.formatName) is not accepted"))
        }
        let declared = file.declaredFrames
        var info = AudioInfo(format: file.formatName, subtype: file.subtypeName, sampleRate: file.sampleRate,
                             channels: file.channels, frames: 0, declaredFrames: declared)
        guard file.isAllowedCodec else {
            return reject(AudioError(.unsupportedCodec, path: shown, "codec \(file.subtypeName) in \(file.formatName) is not supported"), info: info)
        }
        guard file.channels >= 1, file.channels <= configuration.maximumChannels else {
            return reject(AudioError(.unsupportedLayout, path: shown, "\(file.channels) channels (accepted: 1 to \(configuration.maximumChannels))"), info: info)
        }
        guard file.sampleRate >= configuration.minimumSampleRate, file.sampleRate <= configuration.maximumSampleRate else {
            return reject(AudioError(.unsupportedLayout, path: shown, "sample rate \(file.sampleRate) Hz (accepted: \(configuration.minimumSampleRate) to \(configuration.maximumSampleRate) Hz)"), info: info)
        }
        let maximumFrames = Int64(configuration.maximumSeconds * Double(file.sampleRate))
        if file.rawFrames < 0 {
            return reject(AudioError(.implausibleHeader, path: shown, "the header declares a negative length (\(file.rawFrames) frames)"), info: info)
        }
        if let declared {
            if file.isByteCodec, declared * Int64(file.channels) > 5 * bytes.length {
                return reject(AudioError(.implausibleHeader, path: shown, "the header declares \(declared) frames, more than \(bytes.length) bytes of \(file.subtypeName) can hold"), info: info)
            }
            if declared > maximumFrames {
                return reject(AudioError(.implausibleHeader, path: shown, "the header declares \(formatSeconds(Double(declared) / Double(file.sampleRate))), longer than the \(formatSeconds(configuration.maximumSeconds)) limit"), info: info)
            }
        }
        if file.channels > 2 {
            warnings.append(AudioWarning(.downmixed, "\(shown): \(file.channels) channels are mixed down to mono"))
        }

        // 4. The decode pass.
        var pass = SignalPass(channels: file.channels, sampleRate: file.sampleRate,
                              clipThreshold: configuration.clipLevel * file.fullScale, clipRun: configuration.clipRun)
        let reader = BlockReader(file: file, blockFrames: pass.windowFrames * max(1, 8192 / pass.windowFrames))
        var consumer = prepare?(info)
        var tooLong = false
        while true {
            let n = reader.next()
            if n == 0 { break }
            pass.consume(reader.buffer, frames: n)  // sanitises NaN/Inf in place
            if let c = consumer, !c.consume(reader.buffer, frames: n) { consumer = nil }
            if pass.frames > maximumFrames {
                tooLong = true
                break
            }
        }
        info.frames = pass.frames
        if tooLong {
            return reject(AudioError(.implausibleHeader, path: shown, "more than \(formatSeconds(configuration.maximumSeconds)) of audio"), info: info)
        }
        let stats = pass.finish(configuration: configuration)
        let seconds = info.seconds

        // 5. Rules on what decoded.
        if pass.frames == 0 {
            let why = reader.decodeError.map { "decoding failed at once: \($0)" }
                ?? (declared == 0 ? "the header declares no audio data and none follows it" : "no audio frames decoded")
            return reject(AudioError(.noAudio, path: shown, why), info: info)
        }
        if let decodeError = reader.decodeError {
            warnings.append(AudioWarning(.truncated, "\(shown): decoding stopped early after \(formatSeconds(seconds)) (\(decodeError)); keeping what decoded"))
        } else if let declared, declared - pass.frames > max(Int64(Double(declared) * configuration.truncationTolerance), 1152) {
            warnings.append(AudioWarning(.truncated, "\(shown): decoded \(pass.frames) of the \(declared) frames the header declares (\(formatSeconds(seconds)) of \(formatSeconds(Double(declared) / Double(info.sampleRate)))); keeping what decoded"))
        } else if file.log.contains("(should be") {
            warnings.append(AudioWarning(.truncated, "\(shown): the file is shorter than its header says (\(firstLine(of: file.log, containing: "(should be"))); keeping the \(formatSeconds(seconds)) that are there"))
        }
        // MP3 whose header under-states its length (VBR without a Xing header): libsndfile stops
        // at its estimate. Count the frames and say how much audio was not decoded.
        if file.majorFormat == file.mpegMajorFormat, let counted = MPEGFrames.countSamples(bytes),
           counted > pass.frames + 2 * 1152 {
            warnings.append(AudioWarning(.lengthMismatch, "\(shown): the MP3 holds about \(formatSeconds(Double(counted) / Double(info.sampleRate))) of audio but only \(formatSeconds(seconds)) decode (a VBR file without a Xing header); the rest is not in the output — re-encode the source with a Xing/LAME header to keep it"))
        }
        let totalSamples = Double(pass.frames) * Double(info.channels)
        if stats.nonFiniteSamples > 0 {
            let ratio = Double(stats.nonFiniteSamples) / totalSamples
            if ratio > configuration.maximumNonFiniteRatio {
                return reject(AudioError(.corruptFloat, path: shown, "\(stats.nonFiniteSamples) of \(Int64(totalSamples)) samples are NaN or infinite (\(percent(ratio)); the limit is \(percent(configuration.maximumNonFiniteRatio)))"), info: info)
            }
            warnings.append(AudioWarning(.nonFiniteSamples, "\(shown): \(stats.nonFiniteSamples) NaN or infinite samples were replaced by silence"))
        }
        if seconds < configuration.minimumSeconds {
            return reject(AudioError(.tooShort, path: shown, "only \(formatSeconds(seconds)) of audio; the minimum is \(formatSeconds(configuration.minimumSeconds))"), info: info)
        }
        let digitalFloor: Float = file.isALaw ? 8.5 / 32768 : 0
        if pass.peak <= digitalFloor {
            return reject(AudioError(.silentRecording, path: shown, "digital silence: every sample is zero"), info: info)
        }
        if pass.loudestWindow < configuration.silenceRMSdB, stats.peakdBFS < configuration.silencePeakdB {
            return reject(AudioError(.silentRecording, path: shown, "nothing louder than \(Int(configuration.silenceRMSdB)) dBFS anywhere (loudest 20 ms: \(rounded(pass.loudestWindow)) dBFS, peak \(rounded(stats.peakdBFS)) dBFS)"), info: info)
        }

        // 6. Warnings that still upload.
        if seconds < configuration.shortSeconds {
            warnings.append(AudioWarning(.shortRecording, "\(shown): only \(formatSeconds(seconds)) long"))
        }
        if stats.activeRatio < configuration.deadAirActiveRatio {
            warnings.append(AudioWarning(.deadAir, "\(shown): speech in only \(percent(stats.activeRatio)) of the recording"))
        } else if stats.longestSilenceSeconds > configuration.deadAirSeconds {
            warnings.append(AudioWarning(.deadAir, "\(shown): \(formatSeconds(stats.longestSilenceSeconds)) of continuous silence"))
        }
        if stats.channelActiveRatios.count == 2 {
            let (a, b) = (stats.channelActiveRatios[0], stats.channelActiveRatios[1])
            if min(a, b) < configuration.oneWayQuietRatio, max(a, b) > configuration.oneWayActiveRatio {
                let quiet = a < b ? "left" : "right"
                warnings.append(AudioWarning(.oneWayAudio, "\(shown): the \(quiet) channel is silent (\(percent(min(a, b))) active) while the other talks (\(percent(max(a, b))))"))
            }
        }
        let activeSamples = stats.activeRatio * totalSamples
        if stats.clippedSamples > 0, Double(stats.clippedSamples) > configuration.clipRatio * max(activeSamples, 1) {
            warnings.append(AudioWarning(.clipped, "\(shown): \(stats.clippedSamples) samples clipped at full scale"))
        }
        if let level = stats.activeLeveldBFS, level < configuration.lowLeveldB {
            warnings.append(AudioWarning(.lowLevel, "\(shown): speech level \(rounded(level)) dBFS is below \(Int(configuration.lowLeveldB)) dBFS"))
        }
        if abs(stats.dcOffset) > configuration.dcOffset {
            warnings.append(AudioWarning(.dcOffset, "\(shown): DC offset of \(rounded(stats.dcOffset * 100))% of full scale"))
        }

        let envelope = Envelope(windowFrames: pass.windowFrames, values: pass.envelope, floor: stats.noiseFloordBFS)
        return AudioAnalysis(path: shown, info: info, error: nil, warnings: warnings, stats: stats, envelope: envelope,
                             source: plan, seeksExactly: file.seeksExactly)
    }

    static func classifyOpenFailure(_ failure: SndFile.OpenFailure, path: String) -> AudioError {
        let text = failure.message
        let lower = (text + " " + failure.log).lowercased()
        if lower.contains("channel") && (lower.contains("bad") || lower.contains("zero") || lower.contains("number of channels") || lower.contains("channels : 0")) {
            return AudioError(.unsupportedLayout, path: path, "the header declares an invalid channel count (\(text))", libraryStatus: failure.status)
        }
        if lower.contains("sample rate") && (lower.contains(": 0\n") || lower.contains("bad") || lower.contains("zero")) {
            return AudioError(.unsupportedLayout, path: path, "the header declares an invalid sample rate (\(text))", libraryStatus: failure.status)
        }
        let kind = failure.status == 1 ? "not a recognised audio format" : "malformed"
        return AudioError(.undecodable, path: path, "\(kind): \(text)", libraryStatus: failure.status)
    }

    private static func describeUnknown(_ head: [UInt8]) -> String {
        let printable = head.allSatisfy { ($0 >= 0x20 && $0 < 0x7F) || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }
        if printable { return "this is text, not audio (starts with \"\(String(decoding: head.prefix(12), as: UTF8.self))\")" }
        let hex = head.prefix(4).map { byte in
            let s = String(byte, radix: 16)
            return s.count == 1 ? "0" + s : s
        }.joined(separator: " ")
        return "not an accepted audio container (leading bytes \(hex)); accepted: WAV, W64, RF64, AIFF, AU, CAF, FLAC, Ogg, MP3"
    }

    private static func firstLine(of log: String, containing needle: String) -> String {
        log.split(separator: "\n").first { $0.contains(needle) }.map { $0.trimmingCharacters() } ?? needle
    }
}

/// Receives each decoded, sanitised block of the validation pass. Returns false to stop
/// receiving (the rest of the pass still validates).
protocol BlockConsumer: AnyObject {
    func consume(_ buffer: UnsafeMutablePointer<Float>, frames: Int) -> Bool
}

/// The accumulators of the validation pass, fed block by block.
struct SignalPass {
    let channels: Int
    let windowFrames: Int
    let clipThreshold: Float
    let clipRun: Int
    private(set) var frames: Int64 = 0
    private(set) var peak: Float = 0
    private(set) var loudestWindow: Float = -200
    private(set) var envelope: [Float] = []
    private var channelEnvelopes: [[Float]]
    private var sum: Double = 0
    private var nonFinite: Int64 = 0
    private var clipped: Int64 = 0
    private var runs: [Int]
    private var histogram = [Int](repeating: 0, count: 2001)
    private var scratch: [Double]

    init(channels: Int, sampleRate: Int, clipThreshold: Float, clipRun: Int) {
        self.channels = channels
        windowFrames = max(1, (sampleRate + 25) / 50)
        self.clipThreshold = clipThreshold
        self.clipRun = clipRun
        channelEnvelopes = channels == 2 ? [[], []] : []
        runs = [Int](repeating: 0, count: channels)
        scratch = [Double](repeating: 0, count: channels * 3)
    }

    mutating func consume(_ buffer: UnsafeMutablePointer<Float>, frames n: Int) {
        var f = 0
        while f < n {
            let wf = min(windowFrames, n - f)
            window(buffer + f * channels, frames: wf)
            f += wf
        }
        frames += Int64(n)
    }

    /// One 20 ms window: per-channel power, sum and peak, SIMD for mono and two legs.
    private mutating func window(_ base: UnsafeMutablePointer<Float>, frames wf: Int) {
        let count = wf * channels
        var power = (0.0, 0.0), total = 0.0, top = (Float(0), Float(0))
        if channels <= 2 {
            (power, total, top) = simdStats(base, count: count)
            if !(power.0 + power.1).isFinite {
                sanitize(base, count: count)
                (power, total, top) = simdStats(base, count: count)
            }
        }
        var levels: (Float, Float) = (-200, -200)
        if channels == 1 {
            levels.0 = decibels(power: power.0 / Double(wf))
            peak = max(peak, top.0)
            if top.0 >= clipThreshold { scanClipping(base, count: count) } else { closeRuns() }
            record(levels.0)
        } else if channels == 2 {
            levels = (decibels(power: power.0 / Double(wf)), decibels(power: power.1 / Double(wf)))
            peak = max(peak, max(top.0, top.1))
            if max(top.0, top.1) >= clipThreshold { scanClipping(base, count: count) } else { closeRuns() }
            channelEnvelopes[0].append(levels.0)
            channelEnvelopes[1].append(levels.1)
            record(max(levels.0, levels.1))
        } else {
            // Scalar path for 3–8 channels (rare: conference bridges), per channel.
            var loudest: Float = -200
            var anyClip = false
            for c in 0..<channels {
                var p = 0.0, s = 0.0
                var m: Float = 0
                var i = c
                while i < count {
                    var x = base[i]
                    if !x.isFinite { nonFinite += 1; x = 0; base[i] = 0 }
                    p += Double(x * x)
                    s += Double(x)
                    m = max(m, abs(x))
                    i += channels
                }
                total += s
                peak = max(peak, m)
                anyClip = anyClip || m >= clipThreshold
                loudest = max(loudest, decibels(power: p / Double(wf)))
            }
            if anyClip { scanClipping(base, count: count) } else { closeRuns() }
            record(loudest)
        }
        sum += total
    }

    private mutating func record(_ level: Float) {
        envelope.append(level)
        loudestWindow = max(loudestWindow, level)
        histogram[Int(min(max((level + 200) * 10, 0), 2000))] += 1
    }

    /// Sums of squares, sum and peak for 1 or 2 interleaved channels, eight samples at a time.
    private func simdStats(_ base: UnsafeMutablePointer<Float>, count: Int) -> ((Double, Double), Double, (Float, Float)) {
        // Peaks are tracked as the largest square (compare + select vectorises; pointwiseMax on
        // SIMD8 was measured 10× slower here).
        var vsq = SIMD8<Float>(), vsum = SIMD8<Float>(), vtop = SIMD8<Float>()
        var i = 0
        let raw = UnsafeRawPointer(base)
        while i + 8 <= count {
            let v = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            let sq = v * v
            vsq += sq
            vsum += v
            vtop = vtop.replacing(with: sq, where: sq .> vtop)
            i += 8
        }
        var p0 = 0.0, p1 = 0.0, s = Double(vsum.sum())
        var m0: Float = 0, m1: Float = 0
        if channels == 1 {
            p0 = Double(vsq.sum())
            m0 = vtop.max()
        } else {
            p0 = Double(vsq[0] + vsq[2] + vsq[4] + vsq[6])
            p1 = Double(vsq[1] + vsq[3] + vsq[5] + vsq[7])
            m0 = max(max(vtop[0], vtop[2]), max(vtop[4], vtop[6]))
            m1 = max(max(vtop[1], vtop[3]), max(vtop[5], vtop[7]))
        }
        while i < count {
            let x = base[i]
            if channels == 1 || i % 2 == 0 {
                p0 += Double(x * x); m0 = max(m0, x * x)
            } else {
                p1 += Double(x * x); m1 = max(m1, x * x)
            }
            s += Double(x)
            i += 1
        }
        return ((p0, p1), s, (m0.squareRoot(), m1.squareRoot()))
    }

    private mutating func sanitize(_ base: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count where !base[i].isFinite {
            nonFinite += 1
            base[i] = 0
        }
    }

    private mutating func scanClipping(_ base: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count {
            let c = i % channels
            if abs(base[i]) >= clipThreshold {
                runs[c] += 1
            } else {
                if runs[c] >= clipRun { clipped += Int64(runs[c]) }
                runs[c] = 0
            }
        }
    }

    private mutating func closeRuns() {
        for c in 0..<channels where runs[c] != 0 {
            if runs[c] >= clipRun { clipped += Int64(runs[c]) }
            runs[c] = 0
        }
    }

    /// Turns the accumulators into the statistics the rules need.
    mutating func finish(configuration: ValidationConfiguration) -> SignalStats {
        closeRuns()
        let windows = envelope.count
        var floor: Float = -200
        if windows > 0 {
            var seen = 0
            for (bin, n) in histogram.enumerated() {
                seen += n
                if seen * 10 >= windows {
                    floor = Float(bin) / 10 - 200
                    break
                }
            }
        }
        let threshold = max(configuration.activeMinimumdB, floor + configuration.activeAboveFloordB)
        var active = 0, longest = 0, run = 0
        var activePower = 0.0
        for level in envelope {
            if level > threshold {
                active += 1
                activePower += pow(10, Double(level) / 10)
                run = 0
            } else {
                run += 1
                longest = max(longest, run)
            }
        }
        let perChannel = channelEnvelopes.map { levels in
            levels.isEmpty ? 0 : Double(levels.count { $0 > threshold }) / Double(levels.count)
        }
        let windowSeconds = Double(windowFrames) / Double(windowFrames * 50)
        let samples = Double(frames) * Double(channels)
        return SignalStats(
            peakdBFS: decibels(amplitude: peak),
            activeLeveldBFS: active > 0 ? decibels(power: activePower / Double(active)) : nil,
            noiseFloordBFS: floor,
            activeRatio: windows > 0 ? Double(active) / Double(windows) : 0,
            channelActiveRatios: perChannel,
            longestSilenceSeconds: Double(longest) * windowSeconds,
            clippedSamples: clipped,
            nonFiniteSamples: nonFinite,
            dcOffset: samples > 0 ? Float(sum / samples) : 0
        )
    }
}

// MARK: - Formatting helpers shared by messages

func formatSeconds(_ seconds: Double) -> String {
    if seconds >= 3600 { return "\(rounded(Float(seconds / 3600))) h" }
    if seconds >= 120 { return "\(rounded(Float(seconds / 60))) min" }
    if seconds < 10 { return "\(Double(Int((seconds * 1000).rounded())) / 1000) s" }
    return "\(rounded(Float(seconds))) s"
}

func percent(_ ratio: Double) -> String { "\(rounded(Float(ratio * 100)))%" }

func rounded(_ value: Float) -> String {
    let r = (value * 10).rounded() / 10
    return r == r.rounded() ? String(Int(r)) : String(r)
}

extension Substring {
    func trimmingCharacters() -> String {
        String(self.drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" || $0 == "\r" }.reversed())
    }
}

extension AudioAnalyzer {
    /// Decodes `path` and counts frames, with no validation: the decode floor, for benchmarks.
    @_spi(Benchmarks)
    public static func decodeOnly(path: String) throws -> Int64 {
        let file = try SourcePlan(path: path, displayPath: path, patches: []).open()
        let reader = BlockReader(file: file, blockFrames: 8192)
        var frames: Int64 = 0
        while true {
            let n = reader.next()
            if n == 0 { break }
            frames += Int64(n)
        }
        return frames
    }
}
