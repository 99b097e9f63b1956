import Foundation

/// Builders for hostile inputs (research/audio.md §7.5 item 4).
enum Hostile {
    /// A canonical 44-byte PCM WAV header.
    static func wavHeader(channels: UInt16 = 1, rate: UInt32 = 8000, bits: UInt16 = 16, dataBytes: UInt32) -> [UInt8] {
        var h: [UInt8] = []
        func u32(_ v: UInt32) { h += [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v >> 16 & 0xFF), UInt8(v >> 24)] }
        func u16(_ v: UInt16) { h += [UInt8(v & 0xFF), UInt8(v >> 8)] }
        h += Array("RIFF".utf8); u32(36 &+ dataBytes); h += Array("WAVE".utf8)
        h += Array("fmt ".utf8); u32(16); u16(1); u16(channels); u32(rate)
        u32(rate * UInt32(channels) * UInt32(bits / 8)); u16(channels * bits / 8); u16(bits)
        h += Array("data".utf8); u32(dataBytes)
        return h
    }

    /// Deterministic pseudo-random bytes that do not start with any container's magic.
    static func randomBytes(_ count: Int, seed: UInt64 = 42) -> [UInt8] {
        var state = seed
        var out = [UInt8](repeating: 0, count: count)
        for i in 0..<count {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            out[i] = UInt8(truncatingIfNeeded: state >> 33)
        }
        out[0] = 0x13  // no MPEG sync, no ASCII magic
        return out
    }

    static func write(_ bytes: [UInt8], to path: String) {
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
    }

    static func bytes(of path: String) -> [UInt8] { [UInt8](FileManager.default.contents(atPath: path)!) }
}
