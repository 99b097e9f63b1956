import Crypto
import Foundation
import Hummingbird
import NIOCore
import Synchronization

/// The sandbox's expiring recording links, signed like a presigned S3 URL:
/// `GET /_sandbox/telnyx/media/<recording id>.<fmt>?expires=<epoch s>&signature=<hmac hex>`, the
/// HMAC-SHA256 of `"<id>.<fmt>\n<expires>"` under a key made when the sandbox starts (links of an
/// earlier run of the sandbox no longer verify, as a renewed one would be needed after 10 minutes
/// at Telnyx anyway).
final class TelnyxLinks: Sendable {
    /// How long a link in a listing's `download_urls` stays valid (Telnyx: 10 minutes).
    static let defaultTTL = 600

    private let key: SymmetricKey
    /// The sandbox's base URL, once it listens.
    private let base = Mutex("")

    init(key: SymmetricKey = SymmetricKey(size: .bits256)) {
        self.key = key
    }

    /// Sets the base URL the links start with (when the server listens).
    func serving(at base: String) {
        self.base.withLock { $0 = base }
    }

    /// A link to `id`'s audio in `format`, valid `ttl` seconds after `now` (0: already expired).
    func link(recording id: String, format: String, ttl: Int, now: Date = Date()) -> String {
        let expires = Int(now.timeIntervalSince1970.rounded(.down)) + ttl
        let prefix = base.withLock { $0 }
        return "\(prefix)/_sandbox/telnyx/media/\(id).\(format)?expires=\(expires)&signature=\(signature(file: "\(id).\(format)", expires: expires))"
    }

    /// The links of a recording in every format it has.
    func links(for recording: SandboxTelnyxRecording, ttl: Int, now: Date = Date()) -> [String: String] {
        guard let format = recording.format else { return [:] }
        return [format: link(recording: recording.id, format: format, ttl: ttl, now: now)]
    }

    private func signature(file: String, expires: Int) -> String {
        HMAC<SHA256>.authenticationCode(for: Data("\(file)\n\(expires)".utf8), using: key)
            .map { String(format: "%02x", $0) }.joined()
    }

    enum Verdict: Equatable { case valid, expired, badSignature }

    /// Checks the query of a media request for `file` (`<id>.<fmt>`).
    func check(file: String, expires: String?, signature: String?, now: Date = Date()) -> Verdict {
        guard let expires, let seconds = Int(expires), let signature, let given = Self.bytes(hex: signature),
              HMAC<SHA256>.isValidAuthenticationCode(given, authenticating: Data("\(file)\n\(seconds)".utf8), using: key)
        else { return .badSignature }
        return now.timeIntervalSince1970 < Double(seconds) ? .valid : .expired
    }

    private static func bytes(hex: String) -> Data? {
        guard hex.count % 2 == 0 else { return nil }
        var data = Data(capacity: hex.count / 2)
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            guard let byte = UInt8(hex[index..<next], radix: 16) else { return nil }
            data.append(byte)
            index = next
        }
        return data
    }
}

/// Synthetic speech-like call audio, 8 kHz mono 16-bit PCM, as callrec's validation accepts it
/// (not silent, not clipped, real pauses): the voice of CallTesting's `SyntheticAudio.speech`
/// (7 s talk, 3 s pause), read from a 30-second table computed once, under a noise floor
/// (≈ −72 dBFS) seeded by the recording's id, so every recording's bytes differ and the same
/// recording always has the same bytes. Generated while it is served: nothing is kept per
/// recording.
enum TelnyxAudio {
    static let sampleRate = 8000
    static let headerBytes = 44
    /// 30 s of voice (three turns of 10 s with pitches 150, 165, 180 Hz), level 0.3.
    static let table: [Int16] = {
        let count = 30 * sampleRate
        var samples = [Int16](repeating: 0, count: count)
        for index in 0..<count {
            let t = Double(index) / Double(sampleRate)
            let turn = Int(t / 10)
            guard t.truncatingRemainder(dividingBy: 10) < 7 else { continue }
            let f0 = 150 + 20 * sin(2 * .pi * 0.5 * t) + Double(turn % 3) * 15
            let syllable = 0.55 + 0.45 * sin(2 * .pi * 4 * t)
            var value = 0.0
            for h in 1...6 { value += sin(2 * .pi * f0 * Double(h) * t) / Double(h) }
            samples[index] = Int16((0.3 * syllable * value / 2 * 32767).rounded())
        }
        return samples
    }()

    /// Frames in a recording of `millis` milliseconds.
    static func frames(millis: Int) -> Int { max(0, millis) * sampleRate / 1000 }

    /// The WAV file's size in bytes.
    static func wavBytes(millis: Int) -> Int { headerBytes + 2 * frames(millis: millis) }

    /// A stable 64-bit seed from the recording id (FNV-1a: the same across processes).
    static func seed(_ id: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in id.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x100_0000_01b3
        }
        return hash
    }

    /// The canonical 44-byte header of a PCM WAV file.
    static func writeHeader(frames: Int, into buffer: inout ByteBuffer) {
        let data = UInt32(2 * frames)
        buffer.writeString("RIFF")
        buffer.writeInteger(36 + data, endianness: .little)
        buffer.writeString("WAVEfmt ")
        buffer.writeInteger(UInt32(16), endianness: .little)
        buffer.writeInteger(UInt16(1), endianness: .little)  // PCM
        buffer.writeInteger(UInt16(1), endianness: .little)  // mono
        buffer.writeInteger(UInt32(sampleRate), endianness: .little)
        buffer.writeInteger(UInt32(sampleRate * 2), endianness: .little)
        buffer.writeInteger(UInt16(2), endianness: .little)
        buffer.writeInteger(UInt16(16), endianness: .little)
        buffer.writeString("data")
        buffer.writeInteger(data, endianness: .little)
    }

    /// Appends frames `start..<start+count` of the recording seeded by `seed`.
    static func writeSamples(seed: UInt64, start: Int, count: Int, into buffer: inout ByteBuffer) {
        let table = Self.table
        // Which turn the recording starts on, so the pitch pattern differs too.
        let offset = Int(seed % 3) * 10 * sampleRate
        buffer.reserveCapacity(minimumWritableBytes: 2 * count)
        for index in start..<(start + count) {
            var noise = (UInt64(index) &+ seed) &* 0x9E37_79B9_7F4A_7C15
            noise ^= noise >> 31
            let value = Int(table[(index + offset) % table.count]) + Int(noise % 17) - 8
            buffer.writeInteger(Int16(clamping: value), endianness: .little)
        }
    }

    /// The whole WAV file (tests; the route streams it).
    static func wav(id: String, millis: Int) -> ByteBuffer {
        var buffer = ByteBuffer()
        let frames = frames(millis: millis)
        writeHeader(frames: frames, into: &buffer)
        writeSamples(seed: seed(id), start: 0, count: frames, into: &buffer)
        return buffer
    }

    /// The WAV file as a streamed response body, 16,000 frames (2 s) at a time.
    static func wavBody(id: String, millis: Int) -> ResponseBody {
        let frames = frames(millis: millis)
        let seed = seed(id)
        return ResponseBody(contentLength: wavBytes(millis: millis)) { writer in
            var buffer = ByteBuffer()
            writeHeader(frames: frames, into: &buffer)
            try await writer.write(buffer)
            var done = 0
            let block = 2 * sampleRate
            while done < frames {
                let count = min(block, frames - done)
                var chunk = ByteBuffer()
                writeSamples(seed: seed, start: done, count: count, into: &chunk)
                try await writer.write(chunk)
                done += count
            }
            try await writer.finish(nil)
        }
    }
}

/// MP3s made with the injected encoder (``SandboxConfiguration/mp3Encoder``), one per recording
/// length (their audio is the table without a per-recording noise floor), kept in the sandbox's
/// files under `telnyx-media/`.
actor TelnyxMP3Cache {
    private let encoder: SandboxConfiguration.MP3Encoder?
    private let directory: String
    private var made: [Int: Task<String, any Error>] = [:]

    init(encoder: SandboxConfiguration.MP3Encoder?, directory: String) {
        self.encoder = encoder
        self.directory = directory
    }

    var available: Bool { encoder != nil }

    /// The path of the MP3 of a recording `millis` long (made on first use).
    func path(millis: Int) async throws -> String {
        if let task = made[millis] { return try await task.value }
        guard let encoder else { throw SandboxError(.invalidConfiguration, "this sandbox has no MP3 encoder") }
        let directory = self.directory
        let task = Task {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let wav = directory + "/\(millis).wav"
            let mp3 = directory + "/\(millis).mp3"
            if FileManager.default.fileExists(atPath: mp3) { return mp3 }
            let data = TelnyxAudio.wav(id: "", millis: millis)
            try Data(data.readableBytesView).write(to: URL(fileURLWithPath: wav))
            defer { try? FileManager.default.removeItem(atPath: wav) }
            try await encoder(wav, mp3 + ".part")
            try FileManager.default.moveItem(atPath: mp3 + ".part", toPath: mp3)
            return mp3
        }
        made[millis] = task
        do {
            return try await task.value
        } catch {
            made[millis] = nil
            throw error
        }
    }
}
