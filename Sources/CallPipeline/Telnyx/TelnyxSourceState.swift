public import CallJobs
public import CallTelnyx
import Foundation

/// What a Telnyx recording's metadata keeps beside the PBX fields (``SourceMetadata/telnyx``).
public struct TelnyxSourceState: Codable, Sendable, Hashable {
    /// The recording as announced (or listed); ``TelnyxRecordingInfo/recordingID`` is filled in
    /// once the listing gave it.
    public var recording: TelnyxRecordingInfo
    /// The format asked for (`mp3`, `wav`).
    public var format: String
    /// Epoch seconds: until when the job waits for the call's events.
    public var eventsWaitUntil: Double
    /// SHA-256 of the downloaded file (nil before the download): what the transcode checks the
    /// file against.
    public var audioSHA256: String?
    /// `webhook` or `backfill`.
    public var origin: String

    enum CodingKeys: String, CodingKey {
        case recording, format, origin
        case eventsWaitUntil = "events_wait_until", audioSHA256 = "audio_sha256"
    }

    public init(recording: TelnyxRecordingInfo, format: String, eventsWaitUntil: Double, audioSHA256: String? = nil, origin: String) {
        self.recording = recording
        self.format = format
        self.eventsWaitUntil = eventsWaitUntil
        self.audioSHA256 = audioSHA256
        self.origin = origin
    }
}

extension QueueName {
    /// Downloads from providers (Telnyx recordings): network-bound, so apart from the CPU slots.
    public static let fetch: QueueName = "fetch"
}

extension Spool {
    /// Where a Telnyx recording is downloaded to (outside the recording's part directory, which
    /// a transcode empties first): `<spool>/telnyx/<key>.<format>`.
    public func telnyxPath(key: String, format: String) -> String {
        Paths.join(Paths.join(root, "telnyx"), "\(key).\(format)")
    }

    /// The Telnyx downloads of a recording that exist (any format): what a prune removes and a
    /// delete moves to the trash with the recording's parts.
    public func telnyxDownloads(key: String) -> [String] {
        ["mp3", "wav"].map { telnyxPath(key: key, format: $0) }.filter { FileManager.default.fileExists(atPath: $0) }
    }
}
