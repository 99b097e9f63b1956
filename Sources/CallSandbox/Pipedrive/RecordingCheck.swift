import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
// On Linux the clang importer may attribute `stat` and its fields to Dispatch's C module, which
// read <sys/stat.h> first; MemberImportVisibility then wants that module imported by name.
#if canImport(CDispatch)
import CDispatch
#endif

/// Whether an upload is an MP3 a browser can play.
///
/// Pipedrive documents only "audio supported by HTML5" (api-contract §1.7, UNCONFIRMED which
/// formats it takes); the pipeline always sends MP3, so the sandbox holds uploads to that. It reads
/// the MPEG audio frame headers itself (it is the client's independent peer and shares no code
/// with callrec's decoder): after an optional ID3v2 tag the file must start with a run of
/// ``requiredFrames`` consecutive MPEG-1/2/2.5 Layer III frames of one stream, each header's
/// length leading exactly to the next one. A file too short for that run passes when its frames
/// fill it to the end. Whether the audio inside is speech, silence or noise is not its business.
enum RecordingCheck {
    /// The bytes read after the ID3v2 tag: some 5 s of speech at 24 kbps, dozens of frames.
    static let prefixBytes = 16 << 10
    /// Consecutive frames that make a stream (a random 4-byte match is one frame, not eight).
    static let requiredFrames = 8

    /// Nil when `path` holds MP3 audio, else why not.
    static func problem(path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return "the file could not be read" }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return "the file could not be read" }
        let length = Int64(st.st_size)
        let head = read(fd, at: 0, count: 10)
        let start = id3v2Length(head) ?? 0
        guard start < length else { return "the file holds an ID3v2 tag and no audio" }
        let bytes = read(fd, at: start, count: prefixBytes)
        return problem(bytes, endsFileAt: start + Int64(bytes.count) == length ? bytes.count : nil, offset: start)
    }

    /// The verdict on `bytes`, the file's content after its ID3v2 tag (`offset` bytes in).
    /// - Parameter end: the index in `bytes` where the file ends, when it ends inside them.
    static func problem(_ bytes: [UInt8], endsFileAt end: Int?, offset: Int64 = 0) -> String? {
        var position = 0
        var frames = 0
        var first: MPEGFrameHeader?
        while position + 4 <= bytes.count, frames < requiredFrames {
            guard let header = MPEGFrameHeader(bytes, at: position) else { break }
            if let first {
                guard header.isSameStream(as: first) else { break }
            } else {
                guard header.layer == 3 else { return "the file is \(header.name) audio, not MP3" }
                first = header
            }
            frames += 1
            position += header.length
        }
        if frames >= requiredFrames { return nil }
        guard first != nil else { return notMPEG(bytes, offset: offset) }
        if let end, position >= end || trailerOnly(bytes, from: position, to: end) { return nil }
        return "only \(frames) MPEG audio frame\(frames == 1 ? "" : "s") at its start; byte \(offset + Int64(position)) is not a frame header"
    }

    /// What the start of a file that is not MPEG audio looks like.
    private static func notMPEG(_ bytes: [UInt8], offset: Int64) -> String {
        func ascii(_ range: Range<Int>) -> String? {
            bytes.count >= range.upperBound ? String(decoding: bytes[range], as: UTF8.self) : nil
        }
        let container: String? = switch ascii(0..<4) {
        case "RIFF", "RIFX", "RF64": ascii(8..<12) == "WAVE" ? "WAV" : nil
        case "FORM": "AIFF"
        case "fLaC": "FLAC"
        case "OggS": "Ogg"
        case ".snd": "AU"
        case "caff": "CAF"
        default: nil
        }
        if let container { return "the file is \(container) audio, not MP3" }
        if bytes.count >= 8, ascii(4..<8) == "ftyp" { return "the file is MP4/M4A audio, not MP3" }
        return "no MPEG audio frame header at byte \(offset)"
    }

    /// Whether only an ID3v1 tag (`TAG`, 128 bytes) or an APE tag follows the last frame.
    private static func trailerOnly(_ bytes: [UInt8], from position: Int, to end: Int) -> Bool {
        guard position < end, end <= bytes.count else { return false }
        let rest = bytes[position..<end]
        return (rest.count == 128 && rest.starts(with: Array("TAG".utf8))) || rest.starts(with: Array("APETAGEX".utf8))
    }

    /// The length of an ID3v2 tag at the start (header, body and footer), nil when there is none.
    static func id3v2Length(_ head: [UInt8]) -> Int64? {
        guard head.count >= 10, head[0] == 0x49, head[1] == 0x44, head[2] == 0x33,  // "ID3"
              head[3] != 0xFF, head[4] != 0xFF, head[6...9].allSatisfy({ $0 & 0x80 == 0 })
        else { return nil }
        let size = Int64(head[6]) << 21 | Int64(head[7]) << 14 | Int64(head[8]) << 7 | Int64(head[9])
        return 10 + size + (head[5] & 0x10 != 0 ? 10 : 0)
    }

    private static func read(_ fd: Int32, at offset: Int64, count: Int) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, count - done, off_t(offset + Int64(done))) }
            if n < 0, errno == EINTR { continue }
            if n <= 0 { break }
            done += n
        }
        return Array(buffer.prefix(done))
    }
}

/// One MPEG audio frame header (ISO/IEC 11172-3 and 13818-3; MPEG 2.5 as every decoder reads it).
struct MPEGFrameHeader: Equatable {
    /// 1, 2 or 25 (MPEG 2.5).
    var version: Int
    /// 1, 2 or 3.
    var layer: Int
    /// Bits per second.
    var bitrate: Int
    var sampleRate: Int
    var padding: Bool
    /// 0 stereo, 1 joint stereo, 2 dual channel, 3 mono.
    var channelMode: Int

    /// Nil unless the four bytes at `offset` are a valid header: the 11-bit sync word, no
    /// reserved version, layer, bitrate, sample rate or emphasis, and not free format (whose
    /// length the header does not give).
    init?(_ bytes: [UInt8], at offset: Int) {
        guard offset >= 0, offset + 4 <= bytes.count else { return nil }
        let b1 = bytes[offset + 1], b2 = bytes[offset + 2], b3 = bytes[offset + 3]
        guard bytes[offset] == 0xFF, b1 & 0xE0 == 0xE0 else { return nil }
        switch (b1 >> 3) & 0x3 {
        case 0: version = 25
        case 2: version = 2
        case 3: version = 1
        default: return nil
        }
        switch (b1 >> 1) & 0x3 {
        case 1: layer = 3
        case 2: layer = 2
        case 3: layer = 1
        default: return nil
        }
        let bitrateIndex = Int(b2 >> 4), rateIndex = Int((b2 >> 2) & 0x3)
        guard bitrateIndex != 0, bitrateIndex != 15, rateIndex != 3, b3 & 0x3 != 2 else { return nil }
        let table: [Int] = switch (version, layer) {
        case (1, 1): [0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448]
        case (1, 2): [0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384]
        case (1, _): [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320]
        case (_, 1): [0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256]
        default: [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160]
        }
        let rates = switch version {
        case 1: [44100, 48000, 32000]
        case 2: [22050, 24000, 16000]
        default: [11025, 12000, 8000]
        }
        bitrate = table[bitrateIndex] * 1000
        sampleRate = rates[rateIndex]
        padding = (b2 >> 1) & 0x1 == 1
        channelMode = Int(b3 >> 6)
    }

    /// Bytes from this header to the next one.
    var length: Int {
        switch layer {
        case 1: (12 * bitrate / sampleRate + (padding ? 1 : 0)) * 4
        case 3 where version != 1: 72 * bitrate / sampleRate + (padding ? 1 : 0)
        default: 144 * bitrate / sampleRate + (padding ? 1 : 0)
        }
    }

    /// Frames of one stream keep their version, layer, sample rate and channel count.
    func isSameStream(as other: MPEGFrameHeader) -> Bool {
        version == other.version && layer == other.layer && sampleRate == other.sampleRate
            && (channelMode == 3) == (other.channelMode == 3)
    }

    /// "MPEG-1 Layer II", "MPEG-2.5 Layer III" …
    var name: String {
        "MPEG-\(version == 25 ? "2.5" : String(version)) Layer \(["I", "II", "III"][layer - 1])"
    }
}
