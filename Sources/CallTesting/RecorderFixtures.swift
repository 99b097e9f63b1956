public import Foundation

/// Recordings as a recorder leaves them while the call is still going on.
public enum RecorderFixtures {
    /// The header and the first `fraction` of the audio of a complete RIFF/WAVE file, with the
    /// sizes a recorder writes before it knows the length: RIFF and `data` sizes 0.
    public static func unfinishedWAV(_ complete: Data, fraction: Double) throws -> Data {
        let bytes = [UInt8](complete)
        guard bytes.count > 12, String(decoding: bytes[0..<4], as: UTF8.self) == "RIFF" else { throw TestAudioError("not a RIFF file") }
        func le32(_ at: Int) -> Int { Int(bytes[at]) | Int(bytes[at + 1]) << 8 | Int(bytes[at + 2]) << 16 | Int(bytes[at + 3]) << 24 }
        var offset = 12
        while offset + 8 <= bytes.count {
            let size = le32(offset + 4)
            if String(decoding: bytes[offset..<offset + 4], as: UTF8.self) == "data" {
                let kept = Int(Double(size) * fraction) & ~1
                var out = Array(bytes[0..<(offset + 8 + kept)])
                for i in 0..<4 {
                    out[4 + i] = 0
                    out[offset + 4 + i] = 0
                }
                return Data(out)
            }
            offset += 8 + size + (size & 1)
        }
        throw TestAudioError("no data chunk")
    }

    /// A sidecar for a call log to create.
    public static func sidecar(to phone: String, start: String = "2026-11-22 09:00:00", subject: String, extra: String = "") -> String {
        #"{"call_log": {"outcome": "connected", "to_phone_number": "\#(phone)", "start_time": "\#(start)", "subject": "\#(subject)"\#(extra)}}"#
    }
}
