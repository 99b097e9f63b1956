/// Container sniffing before `sf_open`, and the WAV header salvage.
///
/// libsndfile would try every format it knows on any bytes; most of its memory-safety bugs live in
/// header parsers of formats no phone system writes (research/audio.md §1.8). So the leading bytes
/// must match a container on the allow-list before libsndfile sees them.
enum Container {
    /// The container the magic bytes name, or nil when it is not one we accept.
    static func sniff(_ head: [UInt8]) -> String? {
        func ascii(_ range: Range<Int>) -> String? {
            guard head.count >= range.upperBound else { return nil }
            return String(decoding: head[range], as: UTF8.self)
        }
        switch ascii(0..<4) {
        case "RIFF", "RIFX":
            return ascii(8..<12) == "WAVE" ? "WAV" : nil
        case "RF64", "BW64":
            return ascii(8..<12) == "WAVE" ? "RF64" : nil
        case "riff":
            return head.count >= 8 && head[4] == 0x2E && head[5] == 0x91 && head[6] == 0xCF && head[7] == 0x11 ? "W64" : nil
        case "FORM":
            let kind = ascii(8..<12)
            return kind == "AIFF" || kind == "AIFC" ? "AIFF" : nil
        case ".snd", "dns.": return "AU"
        case "caff": return "CAF"
        case "fLaC": return "FLAC"
        case "OggS": return "OGG"
        default: break
        }
        if ascii(0..<3) == "ID3" { return "MPEG" }
        if head.count >= 2, head[0] == 0xFF, head[1] & 0xE0 == 0xE0, head[1] & 0x06 != 0 { return "MPEG" }
        return nil
    }

    /// Where a RIFF/WAVE file's `data` chunk starts and what its header declares; nil when it is
    /// not RIFF/WAVE, and `data` nil when no `data` chunk header lies within the file.
    static func riffLayout(_ bytes: FileBytes) -> (riffSize: Int64, data: (offset: Int64, size: Int64)?)? {
        let head = bytes.head(12)
        guard head.count == 12, String(decoding: head[0..<4], as: UTF8.self) == "RIFF",
              String(decoding: head[8..<12], as: UTF8.self) == "WAVE" else { return nil }
        let riffSize = le32(head[4..<8])
        var offset: Int64 = 12
        var chunk = [UInt8](repeating: 0, count: 8)
        // Walk at most 64 chunks; a real header has a handful.
        for _ in 0..<64 {
            let n = chunk.withUnsafeMutableBytes { bytes.read(into: $0.baseAddress!, count: 8, at: offset) }
            guard n == 8 else { return (riffSize, nil) }
            let size = le32(chunk[4..<8])
            if String(decoding: chunk[0..<4], as: UTF8.self) == "data" { return (riffSize, (offset, size)) }
            offset += 8 + size + (size & 1)
            guard offset < bytes.length else { return (riffSize, nil) }
        }
        return (riffSize, nil)
    }

    /// For a RIFF/WAVE file whose `data` chunk size is 0 (the recorder died before finalising it),
    /// the patches that restore the real sizes; nil when the header is fine or not RIFF at all. A size
    /// that runs past the end is left alone: libsndfile clamps it and logs `(should be …)`, which
    /// the analysis reports as truncation.
    static func wavSizePatches(_ bytes: FileBytes) -> [(offset: Int64, bytes: [UInt8])]? {
        guard let data = riffLayout(bytes)?.data else { return nil }
        let available = bytes.length - data.offset - 8
        guard available > 0, data.size == 0 else { return nil }
        let dataSize = UInt32(clamping: available)
        let riffSize = UInt32(clamping: bytes.length - 8)
        return [(4, le32(riffSize)), (data.offset + 4, le32(dataSize))]
    }

    private static func le32(_ b: ArraySlice<UInt8>) -> Int64 {
        let i = b.startIndex
        return Int64(UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24)
    }

    private static func le32(_ v: UInt32) -> [UInt8] {
        [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v >> 16 & 0xFF), UInt8(v >> 24 & 0xFF)]
    }
}

/// What a WAV header says about a file still being written. A recorder writes the RIFF header
/// first with sizes it cannot know yet (0, or none at all) and fills them in when the call ends;
/// until then the header disagrees with the file.
public enum WAVHeader {
    /// Why the header of the RIFF/WAVE file at `path` looks unfinished (no `data` chunk yet, a
    /// data size of 0, or a RIFF size that disagrees with the file's length); nil when it is
    /// complete, or the file is not RIFF/WAVE (or cannot be read: the decoder says why).
    public static func unfinished(path: String) -> String? {
        guard let bytes = try? FileBytes(path: path), let layout = Container.riffLayout(bytes) else { return nil }
        guard let data = layout.data else { return "its WAV header has no data chunk yet" }
        if data.size == 0, bytes.length > data.offset + 8 { return "its WAV header still declares no audio data" }
        if data.size == 0xFFFF_FFFF || layout.riffSize == 0xFFFF_FFFF { return "its WAV header declares no length yet" }
        // The RIFF size counts everything after its own field; a writer may leave out the pad byte.
        let declared = layout.riffSize + 8
        if declared != bytes.length, declared + 1 != bytes.length {
            return "its WAV header declares \(declared) bytes, but the file holds \(bytes.length)"
        }
        return nil
    }
}
