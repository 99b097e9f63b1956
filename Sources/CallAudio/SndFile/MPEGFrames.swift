/// Counts the audio frames of an MPEG Layer III stream by walking its frame headers.
///
/// libsndfile caps every read at the header's frame count, and for a VBR MP3 without a Xing/Info
/// header that count is an estimate from the first frame's bitrate: the rest of the audio is cut
/// off with no error (research/audio.md S3). Walking the headers gives the real length, so the
/// loss is at least reported.
enum MPEGFrames {
    /// Samples (per channel) the stream holds, before the encoder delay/padding trim; nil when
    /// the bytes are not a Layer III stream this walker understands.
    static func countSamples(_ bytes: FileBytes) -> Int64? {
        var offset: Int64 = 0
        var head = [UInt8](repeating: 0, count: 10)
        // Skip an ID3v2 tag (size is four 7-bit bytes).
        if read(bytes, &head, at: 0, count: 10) == 10, head[0] == 0x49, head[1] == 0x44, head[2] == 0x33 {
            let size = Int64(head[6] & 0x7F) << 21 | Int64(head[7] & 0x7F) << 14 | Int64(head[8] & 0x7F) << 7 | Int64(head[9] & 0x7F)
            offset = 10 + size + (head[5] & 0x10 != 0 ? 10 : 0)
        }
        var samples: Int64 = 0
        var frames = 0
        var header = [UInt8](repeating: 0, count: 4)
        var tagProbe = [UInt8](repeating: 0, count: 40)
        while offset + 4 <= bytes.length {
            guard read(bytes, &header, at: offset, count: 4) == 4,
                  let frame = parse(header) else { break }
            // The first frame may be the Xing/Info (LAME tag) frame, which holds no audio.
            if frames == 0, read(bytes, &tagProbe, at: offset, count: 40) == 40 {
                let text = String(decoding: tagProbe, as: UTF8.self)
                if text.contains("Xing") || text.contains("Info") {
                    offset += Int64(frame.length)
                    frames += 1
                    continue
                }
            }
            samples += Int64(frame.samples)
            frames += 1
            offset += Int64(frame.length)
        }
        return samples > 0 ? samples : nil
    }

    private static func read(_ bytes: FileBytes, _ buffer: inout [UInt8], at offset: Int64, count: Int) -> Int {
        buffer.withUnsafeMutableBytes { bytes.read(into: $0.baseAddress!, count: count, at: offset) }
    }

    /// Frame length in bytes and samples per frame, for a Layer III header.
    static func parse(_ h: [UInt8]) -> (length: Int, samples: Int)? {
        guard h[0] == 0xFF, h[1] & 0xE0 == 0xE0 else { return nil }
        let version = (h[1] >> 3) & 0x3  // 0: 2.5, 2: 2, 3: 1
        let layer = (h[1] >> 1) & 0x3    // 1: Layer III
        guard version != 1, layer == 1 else { return nil }
        let bitrateIndex = Int(h[2] >> 4), rateIndex = Int((h[2] >> 2) & 0x3), padding = Int((h[2] >> 1) & 0x1)
        guard bitrateIndex != 0, bitrateIndex != 15, rateIndex != 3 else { return nil }
        let mpeg1 = version == 3
        let bitrates = mpeg1 ? [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320]
                             : [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160]
        let rates = switch version {
        case 3: [44100, 48000, 32000]
        case 2: [22050, 24000, 16000]
        default: [11025, 12000, 8000]
        }
        let bitrate = bitrates[bitrateIndex] * 1000, rate = rates[rateIndex]
        let samples = mpeg1 ? 1152 : 576
        let length = samples / 8 * bitrate / rate + padding
        guard length > 4 else { return nil }
        return (length, samples)
    }
}
