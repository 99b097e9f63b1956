import CallSources
import CallTelnyx
import FuzzSupport

/// Telnyx webhook bodies, several per input (split at 0x1E, which JSON never holds): each parses
/// to an event or an error naming the field; an event's stored `document` reads back as the same
/// event; `call.recording.saved` events give the recording, its ledger key and the call's facts.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTelnyx(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = FuzzInput(data, size)
    var events: [TelnyxEvent] = []
    for body in input.bytes.split(separator: 0x1E, omittingEmptySubsequences: false) {
        guard let event = try? TelnyxEvent.parse(Array(body)) else { continue }
        let again = try? TelnyxEvent.parse(document: event.document)
        check(again == event, "the stored document does not read back as the event")
        events.append(event)
    }
    _ = TelnyxFacts.isComplete(events)
    for event in events where event.type == TelnyxEvent.recordingSaved {
        guard let recording = try? TelnyxRecordingInfo(event: event) else { continue }
        _ = recording.key
        if let facts = TelnyxFacts.facts(events: events, recording: recording, settings: Fixed.settings) {
            _ = TelnyxFacts.decide(facts, settings: Fixed.settings, audioSeconds: 61)
        }
    }
    return 0
}

/// main.swift's globals would never be set (libFuzzer's main runs, not this file's top level):
/// a static is set on first use.
enum Fixed {
    static let settings = TelnyxSettings()
}
