internal import CCallLame

/// LAME keeps one lazily filled global table (`init_log_table`); filling it from two threads at
/// once is a benign race that sanitizers report. Touching it once, up front, makes it a non-race
/// (research/audio.md §2.7).
private let lameGlobalsReady: Bool = {
    if let l = lame_init() { lame_close(l) }
    return true
}()

/// One LAME encoder for one MP3 stream. Settings are validated by ``TranscodeSettings`` before
/// they get here; samples are sanitised by the caller (LAME aborts on NaN/Inf: S1).
final class LameEncoder {
    private let gfp: OpaquePointer
    let channels: Int
    private var mp3: [UInt8]

    init(format: OutputFormat, maxFrames: Int, path: String) throws(AudioError) {
        _ = lameGlobalsReady
        guard let gfp = lame_init() else {
            throw AudioError(.encoderFailed, path: path, "LAME could not allocate an encoder")
        }
        self.gfp = gfp
        channels = format.channels
        mp3 = [UInt8](repeating: 0, count: maxFrames * 5 / 4 + 7200)
        ccall_lame_silence(gfp)
        lame_set_num_channels(gfp, Int32(format.channels))
        lame_set_in_samplerate(gfp, Int32(format.sampleRate))
        lame_set_out_samplerate(gfp, Int32(format.sampleRate))
        lame_set_mode(gfp, format.channels == 2 ? STEREO : MONO)
        lame_set_VBR(gfp, vbr_off)
        lame_set_brate(gfp, Int32(format.bitrateKbps))
        lame_set_quality(gfp, Int32(format.quality))
        lame_set_bWriteVbrTag(gfp, 1)
        lame_set_write_id3tag_automatic(gfp, 0)
        let status = lame_init_params(gfp)
        guard status >= 0 else {
            lame_close(gfp)
            throw AudioError(.invalidSettings, path: path, "LAME rejected \(format.sampleRate) Hz, \(format.channels) channel(s), \(format.bitrateKbps) kbps", libraryStatus: status)
        }
    }

    deinit { lame_close(gfp) }

    /// Encodes `frames` interleaved frames; calls `sink` with whatever MP3 bytes are ready.
    func encode(_ samples: UnsafeMutablePointer<Float>, frames: Int, path: String,
                sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard frames > 0 else { return }
        let capacity = mp3.count
        let n: Int32 = mp3.withUnsafeMutableBufferPointer { out in
            if channels == 2 {
                lame_encode_buffer_interleaved_ieee_float(gfp, samples, Int32(frames), out.baseAddress, Int32(capacity))
            } else {
                lame_encode_buffer_ieee_float(gfp, samples, nil, Int32(frames), out.baseAddress, Int32(capacity))
            }
        }
        try deliver(n, path: path, sink: sink)
    }

    /// Pads the last frame and emits everything LAME still holds.
    func flush(path: String, sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        // A fresh, fully sized buffer: bug #500 (flush overflow) is not fixed in Debian's 3.100.
        var tail = [UInt8](repeating: 0, count: max(mp3.count, 7200 * 2))
        let capacity = tail.count
        let n = tail.withUnsafeMutableBufferPointer { lame_encode_flush(gfp, $0.baseAddress, Int32(capacity)) }
        guard n >= 0 else { throw AudioError(.encoderFailed, path: path, "LAME flush failed", libraryStatus: n) }
        try tail.withUnsafeBytes { raw in try sink(UnsafeRawBufferPointer(rebasing: raw[0..<Int(n)])) }
    }

    /// The Xing/LAME ("Info") tag frame, to be written over the placeholder at offset 0. It holds
    /// the encoder delay and padding that let decoders restore the exact length.
    func tagFrame() -> [UInt8] {
        var tag = [UInt8](repeating: 0, count: 2880)
        let capacity = tag.count
        let n = tag.withUnsafeMutableBufferPointer { lame_get_lametag_frame(gfp, $0.baseAddress, capacity) }
        return n > 0 && n <= capacity ? Array(tag[0..<n]) : []
    }

    private func deliver(_ n: Int32, path: String, sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard n >= 0 else {
            let why = switch n {
            case -1: "MP3 buffer too small"
            case -2: "out of memory"
            case -3: "encoder not initialised"
            default: "psychoacoustic model failure"
            }
            throw AudioError(.encoderFailed, path: path, "LAME: \(why)", libraryStatus: n)
        }
        try mp3.withUnsafeBytes { raw in try sink(UnsafeRawBufferPointer(rebasing: raw[0..<Int(n)])) }
    }
}

@available(*, unavailable)
extension LameEncoder: Sendable {}

/// The LAME version string, for `--version` and reports.
public var lameVersion: String { String(cString: get_lame_version()) }
