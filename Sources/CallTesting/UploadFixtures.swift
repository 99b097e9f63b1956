import Foundation

/// A recording directory for the pipeline tests: short calls with sidecars, two long ones that
/// split into three parts at a 60 s part limit, one attached to an existing call log by
/// `call_log_id`, and three bad inputs (silence, no sidecar, a sidecar that breaks a rule).
/// Every file has its own bytes (the same bytes are one recording).
public enum UploadFixtures {
    public static let existingCallLog = "CAexisting0001"
    /// Files that fail, with their codes.
    public static let failing = ["silent.wav": "silent_recording", "orphan.wav": "missing_sidecar", "badmeta.wav": "invalid_sidecar"]

    public static func sidecar(index: Int, callLogID: String? = nil) -> String {
        let start = String(format: "2026-11-2%d 1%d:%02d:00", index % 3 + 1, index % 10, index % 60)
        if let callLogID { return #"{"call_log_id": "\#(callLogID)"}"# }
        return #"{"call_log": {"outcome": "connected", "to_phone_number": "+1555000\#(index)", "start_time": "\#(start)", "subject": "Call \#(index)"}, "telnyx_recording_id": null}"#
    }

    /// Writes `count` short calls plus the fixed set under `dir/in`; returns how many recordings
    /// should succeed (`count + 3`).
    @discardableResult
    public static func makeDirectory(_ dir: String, count: Int, longCalls: Int = 2) throws -> Int {
        let fm = FileManager.default
        try fm.createDirectory(atPath: "\(dir)/in/sub", withIntermediateDirectories: true)
        for i in 0..<count {
            let path = "\(dir)/in\(i % 2 == 0 ? "" : "/sub")/call-\(i)"
            try SyntheticAudio.write(.speech(), seconds: 2 + Double(i % 5) + Double(i) * 0.01, format: i % 3 == 0 ? .wavALaw : .wavULaw, to: path + ".wav")
            _ = fm.createFile(atPath: path + ".json", contents: Data(sidecar(index: i).utf8))
        }
        for i in 0..<longCalls {
            try SyntheticAudio.write(.speech(talk: 7, pause: 3), seconds: 150 + Double(i), format: .wavPCM16, to: "\(dir)/in/long-\(i).wav")
            _ = fm.createFile(atPath: "\(dir)/in/long-\(i).json", contents: Data(sidecar(index: 900 + i).utf8))
        }
        try SyntheticAudio.write(.speech(), seconds: 4, to: "\(dir)/in/attached.wav")
        _ = fm.createFile(atPath: "\(dir)/in/attached.json", contents: Data(sidecar(index: 0, callLogID: existingCallLog).utf8))
        try SyntheticAudio.write(.silence, seconds: 5, to: "\(dir)/in/silent.wav")
        _ = fm.createFile(atPath: "\(dir)/in/silent.json", contents: Data(sidecar(index: 1).utf8))
        try SyntheticAudio.write(.speech(), seconds: 3, to: "\(dir)/in/orphan.wav")
        try SyntheticAudio.write(.speech(), seconds: 3.2, to: "\(dir)/in/badmeta.wav")
        _ = fm.createFile(atPath: "\(dir)/in/badmeta.json", contents: Data(#"{"call_log": {"outcome": "maybe", "to_phone_number": "+1", "start_time": "2026-11-20 10:00:00"}}"#.utf8))
        return count + longCalls + 1
    }
}
