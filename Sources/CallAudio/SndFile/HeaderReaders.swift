/// The readers of a recording's header that run before libsndfile sees a byte, as one entry for
/// fuzz/ (the libFuzzer harnesses, scripts/fuzz.sh): the container sniffer, the WAV size salvage
/// and the patched view it serves the decoder, and the MPEG frame counter, called as
/// ``AudioAnalyzer`` calls them. Not for applications.
@_spi(Fuzzing)
public enum HeaderReaders {
    /// The container the leading bytes name (the allow-list), or nil.
    public static func container(_ head: [UInt8]) -> String? {
        Container.sniff(head)
    }

    /// What the decoder would read of the file at `path`: the container its first 16 bytes name,
    /// the salvage's header patches, and every byte of the patched view, read in blocks of
    /// `block` bytes as libsndfile's virtual I/O reads it.
    public static func salvage(path: String, block: Int) throws(AudioError)
        -> (container: String?, patches: [(offset: Int64, bytes: [UInt8])], bytes: [UInt8])
    {
        let plain = try FileBytes(path: path)
        let container = Container.sniff(plain.head(16))
        let patches = Container.wavSizePatches(plain) ?? []
        let view = try FileBytes(path: path, patches: patches)
        var bytes = [UInt8](repeating: 0, count: Int(view.length))
        let step = max(block, 1)
        var offset = 0
        let count = bytes.count
        while offset < count {
            let n = bytes.withUnsafeMutableBytes { view.read(into: $0.baseAddress! + offset, count: min(step, count - offset), at: Int64(offset)) }
            guard n > 0 else { break }
            offset += n
        }
        return (container, patches, Array(bytes.prefix(offset)))
    }

    /// The samples (per channel) the MPEG Layer III frames of the file at `path` hold, or nil.
    public static func mpegSamples(path: String) throws(AudioError) -> Int64? {
        MPEGFrames.countSamples(try FileBytes(path: path))
    }

    /// Frame length and samples per frame of a 4-byte Layer III frame header, or nil.
    public static func mpegFrame(_ header: [UInt8]) -> (length: Int, samples: Int)? {
        guard header.count >= 4 else { return nil }
        return MPEGFrames.parse(Array(header.prefix(4)))
    }
}
