internal import CCallQuietMPG123
internal import CCallSndFile
import Synchronization

/// libsndfile keeps the error of a failed open, and its parse log, in process-wide statics
/// (research/audio.md §1.7): two failing opens at once can report each other's errors. Every open
/// and every read of that global state happens under this one lock; reads and closes do not.
private let openLock = Mutex<Void>(())

/// libmpg123, which libsndfile decodes MP3 with, prints warnings about odd or cut files ("Warning:
/// Xing stream size off by more than 1%…") straight to stderr unless its handle is quiet, and
/// libsndfile cannot make it quiet. CCallQuietMPG123's `mpg123_new` adds MPG123_QUIET to every
/// handle in the process; what such a file means reaches the user through the analysis
/// (truncated, not decodable). True when that `mpg123_new` is the one in use.
let libmpg123IsQuiet: Bool = ccall_mpg123_quiet() != 0

/// One open libsndfile handle over a ``FileBytes`` view. Not shareable across tasks: one decode
/// belongs to one task at a time.
final class SndFile {
    struct OpenFailure: Error {
        let status: Int32
        let message: String
        let log: String
    }

    private let handle: OpaquePointer
    private let bytes: FileBytes
    let sampleRate: Int
    let channels: Int
    /// Header frame count; `nil` when libsndfile reports it does not know (`SF_COUNT_MAX`).
    let declaredFrames: Int64?
    let rawFrames: Int64
    let majorFormat: Int32
    let subtypeFormat: Int32
    let seekable: Bool
    /// The per-file parse log, captured right after open (lines with `***` are warnings,
    /// `(should be …)` marks a size field that disagrees with the file).
    let log: String

    /// Opens `bytes` for reading. The caller keeps `bytes` alive only through this object.
    init(bytes: FileBytes) throws(OpenFailure) {
        _ = libmpg123IsQuiet
        self.bytes = bytes
        var info = SF_INFO()
        let userData = Unmanaged.passUnretained(bytes).toOpaque()
        var vio = SF_VIRTUAL_IO(
            get_filelen: { ud in Unmanaged<FileBytes>.fromOpaque(ud!).takeUnretainedValue().length },
            seek: { offset, whence, ud in
                let f = Unmanaged<FileBytes>.fromOpaque(ud!).takeUnretainedValue()
                let base: Int64
                switch whence {
                case SEEK_CUR: base = f.position
                case SEEK_END: base = f.length
                default: base = 0
                }
                let target = base + offset
                guard target >= 0 else { return -1 }
                f.position = target
                return target
            },
            read: { ptr, count, ud in
                let f = Unmanaged<FileBytes>.fromOpaque(ud!).takeUnretainedValue()
                let n = f.read(into: ptr!, count: Int(count), at: f.position)
                guard n >= 0 else { return -1 }
                f.position += Int64(n)
                return sf_count_t(n)
            },
            write: { _, _, _ in 0 },
            tell: { ud in Unmanaged<FileBytes>.fromOpaque(ud!).takeUnretainedValue().position }
        )
        nonisolated(unsafe) var opened: OpaquePointer?
        var failure: OpenFailure?
        var log = ""
        openLock.withLock { _ in
            opened = sf_open_virtual(&vio, Int32(SFM_READ), &info, userData)
            if let opened {
                log = Self.readLog(opened)
            } else {
                failure = OpenFailure(status: sf_error(nil), message: String(cString: sf_strerror(nil)), log: Self.readLog(nil))
            }
        }
        guard let opened else { throw failure! }
        handle = opened
        self.log = log
        sampleRate = Int(info.samplerate)
        channels = Int(info.channels)
        rawFrames = info.frames
        declaredFrames = info.frames == Int64.max ? nil : info.frames
        majorFormat = info.format & sf(SF_FORMAT_TYPEMASK)
        subtypeFormat = info.format & sf(SF_FORMAT_SUBMASK)
        seekable = info.seekable != 0
    }

    deinit { sf_close(handle) }

    private static func readLog(_ h: OpaquePointer?) -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        _ = sf_command(h, Int32(SFC_GET_LOG_INFO), &buffer, Int32(buffer.count))
        return buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    /// Reads up to `frames` interleaved float frames. A short count is end of file or a decode
    /// error; in the error case libsndfile's message is returned in `error` (checked right after
    /// the short read, before any other call can clear it: research/audio.md S5).
    func read(into buffer: UnsafeMutablePointer<Float>, frames: Int) -> (frames: Int, error: String?) {
        let n = sf_readf_float(handle, buffer, sf_count_t(frames))
        if n < frames {
            let status = sf_error(handle)
            if status != 0 {
                return (max(Int(n), 0), "\(String(cString: sf_strerror(handle))) (libsndfile \(status))")
            }
        }
        return (max(Int(n), 0), nil)
    }

    /// Moves to `frame`; returns false when the codec cannot seek exactly.
    func seek(to frame: Int64) -> Bool {
        sf_seek(handle, frame, SEEK_SET) == frame
    }

    var formatName: String { Self.majorNames[majorFormat] ?? "0x" + String(majorFormat, radix: 16) }
    var subtypeName: String { Self.subtypeNames[subtypeFormat] ?? "0x" + String(subtypeFormat, radix: 16) }

    /// Codecs whose frame positions map to byte positions, so `sf_seek` lands exactly.
    var seeksExactly: Bool {
        seekable && Self.exactSeekSubtypes.contains(subtypeFormat) && majorFormat != sf(SF_FORMAT_FLAC)
    }

    /// Full scale of the codec: µ-law and A-law cannot reach 1.0 (research/audio.md S12).
    var fullScale: Float {
        switch subtypeFormat {
        case sf(SF_FORMAT_ULAW): 0.980347
        case sf(SF_FORMAT_ALAW): 0.984375
        default: 1.0
        }
    }

    var isALaw: Bool { subtypeFormat == sf(SF_FORMAT_ALAW) }
    var mpegMajorFormat: Int32 { sf(SF_FORMAT_MPEG) }

    /// Byte-oriented codecs, for the frames-vs-file-size plausibility check.
    var isByteCodec: Bool { Self.byteCodecSubtypes.contains(subtypeFormat) }

    var isAllowedCodec: Bool { Self.subtypeNames[subtypeFormat] != nil }
    var isAllowedContainer: Bool { Self.majorNames[majorFormat] != nil }

    private static let majorNames: [Int32: String] = [
        sf(SF_FORMAT_WAV): "WAV", sf(SF_FORMAT_WAVEX): "WAVEX",
        sf(SF_FORMAT_W64): "W64", sf(SF_FORMAT_RF64): "RF64",
        sf(SF_FORMAT_AIFF): "AIFF", sf(SF_FORMAT_AU): "AU",
        sf(SF_FORMAT_CAF): "CAF", sf(SF_FORMAT_FLAC): "FLAC",
        sf(SF_FORMAT_OGG): "OGG", sf(SF_FORMAT_MPEG): "MPEG",
    ]

    private static let subtypeNames: [Int32: String] = [
        sf(SF_FORMAT_PCM_S8): "PCM_S8", sf(SF_FORMAT_PCM_U8): "PCM_U8",
        sf(SF_FORMAT_PCM_16): "PCM_16", sf(SF_FORMAT_PCM_24): "PCM_24",
        sf(SF_FORMAT_PCM_32): "PCM_32", sf(SF_FORMAT_FLOAT): "FLOAT",
        sf(SF_FORMAT_DOUBLE): "DOUBLE", sf(SF_FORMAT_ULAW): "ULAW",
        sf(SF_FORMAT_ALAW): "ALAW", sf(SF_FORMAT_IMA_ADPCM): "IMA_ADPCM",
        sf(SF_FORMAT_MS_ADPCM): "MS_ADPCM", sf(SF_FORMAT_GSM610): "GSM610",
        sf(SF_FORMAT_G721_32): "G721_32", sf(SF_FORMAT_VORBIS): "VORBIS",
        sf(SF_FORMAT_OPUS): "OPUS", sf(SF_FORMAT_MPEG_LAYER_I): "MPEG_LAYER_I",
        sf(SF_FORMAT_MPEG_LAYER_II): "MPEG_LAYER_II",
        sf(SF_FORMAT_MPEG_LAYER_III): "MPEG_LAYER_III",
    ]

    private static let exactSeekSubtypes: Set<Int32> = [
        sf(SF_FORMAT_PCM_S8), sf(SF_FORMAT_PCM_U8), sf(SF_FORMAT_PCM_16),
        sf(SF_FORMAT_PCM_24), sf(SF_FORMAT_PCM_32), sf(SF_FORMAT_FLOAT),
        sf(SF_FORMAT_DOUBLE), sf(SF_FORMAT_ULAW), sf(SF_FORMAT_ALAW),
    ]

    private static let byteCodecSubtypes: Set<Int32> = exactSeekSubtypes.union([
        sf(SF_FORMAT_IMA_ADPCM), sf(SF_FORMAT_MS_ADPCM),
        sf(SF_FORMAT_GSM610), sf(SF_FORMAT_G721_32),
    ])
}

@available(*, unavailable)
extension SndFile: Sendable {}

/// The version string of the libsndfile in use, for `--version` and reports.
public var libsndfileVersion: String { String(cString: sf_version_string()) }

/// libsndfile's format constants import as `Int`; the `SF_INFO.format` field is `Int32`.
@inline(__always)
private func sf(_ value: Int) -> Int32 { Int32(truncatingIfNeeded: value) }
