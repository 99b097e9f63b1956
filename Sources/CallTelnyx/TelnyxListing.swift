public import CallAPI
public import Foundation

extension TelnyxRecordingInfo {
    /// A recording as `GET /v2/recordings` lists it (backfill, a renewed link, the recording id
    /// the webhook lacked); nil without its session or leg.
    public init?(listing item: TelnyxRecording) {
        guard let session = item.callSessionId, !session.isEmpty, let leg = item.callLegId, !leg.isEmpty else { return nil }
        self.init(callSessionID: session, callLegID: leg, urls: item.downloadURLs)
        recordingID = item.id
        callControlID = item.callControlId
        connectionID = item.connectionId
        channels = item.channels
        startedAt = item.recordingStartedAt.flatMap(TelnyxTime.parse)
        endedAt = item.recordingEndedAt.flatMap(TelnyxTime.parse)
        from = item.from
        to = item.to
    }
}

/// Telnyx's ISO 8601 times, with or without fractional seconds (Telnyx writes microseconds),
/// in UTC (`Z`) or with an offset; nothing else (no trailing text, no time without its zone).
public enum TelnyxTime {
    public static func parse(_ text: String) -> Date? {
        ISO8601Fast.parse(text)
    }
}
