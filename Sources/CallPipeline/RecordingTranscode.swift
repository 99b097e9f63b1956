import CallAudio
import CallStore
import Foundation

/// Where the parts of one recording go, and a hook that may refuse the names once the part count
/// is known (the batch refuses names another recording of the same run owns).
struct PartTargets: Sendable {
    /// Destination paths for `count` parts.
    var paths: @Sendable (_ count: Int) -> [String]
    /// Returns why these paths may not be written (an error code and message), or nil.
    var claim: @Sendable (_ paths: [String]) async -> (code: String, message: String)? = { _ in nil }
}

/// The CPU stage of one recording — fingerprint, decode, validate, chunk, encode — shared by
/// `callrec transcode` (parts beside a mirror of the input tree) and the queue's transcode job
/// (parts in the spool).
enum RecordingTranscode {
    /// Runs the stage and reports what it made. One decode validates and — for a recording that
    /// fits one part, which is nearly every call — encodes it too; longer recordings are
    /// analysed, planned, then each part is encoded in parallel by its own encoder.
    static func run(path: String, shown: String, key knownKey: String?, sidecarFailure: String?,
                    declaredCallSeconds: Double?, warnings initialWarnings: [AudioWarning],
                    settings: TranscodeSettings, validation: ValidationConfiguration,
                    pool: CPUPool, targets: PartTargets) async -> FileReport {
        var warnings = initialWarnings
        let encodeNow = sidecarFailure == nil
        let single = targets.paths(1)[0]
        let stage: Result<(String, OnePassOutcome), any Error>
        do {
            stage = .success(try await pool.run {
                let key = try knownKey ?? Fingerprint.sha256(ofFile: path)
                if encodeNow {
                    return (key, Transcoder.transcodeInOnePass(path: path, displayPath: shown, validation: validation,
                                                                settings: settings, destination: single))
                }
                let analysis = AudioAnalyzer.analyze(path: path, displayPath: shown, configuration: validation)
                return (key, OnePassOutcome(analysis: analysis, part: nil, encodeError: nil))
            })
        } catch {
            stage = .failure(error)
        }
        let key: String, outcome: OnePassOutcome
        switch stage {
        case .success(let value): (key, outcome) = value
        case .failure(let error): return .failed(shown, code: "unreadable", "\(shown): \(ScanError.reason(error))", key: knownKey)
        }
        let analysis = outcome.analysis
        warnings += analysis.warnings
        if let sidecarFailure {
            var message = sidecarFailure
            if let audio = analysis.error { message += "; and the audio: \(audio.message)" }
            return .failed(shown, code: "invalid_sidecar", message, key: key, warnings: warnings, input: analysis.info)
        }
        guard let info = analysis.info, let envelope = analysis.envelope, analysis.error == nil else {
            let error = analysis.error ?? AudioError(.undecodable, path: shown, "not decodable")
            return .failed(shown, code: error.code.description, error.message, key: key, warnings: warnings, input: analysis.info)
        }
        if let error = outcome.encodeError {
            return .failed(shown, code: error.code.description, message(error, writing: single), key: key, warnings: warnings, input: info)
        }
        if let declaredCallSeconds, let warning = durationCheck(recording: info.seconds, call: declaredCallSeconds, shown: shown) {
            warnings.append(warning)
        }
        let format: OutputFormat
        do { format = try settings.outputFormat(for: info, path: shown) } catch {
            return .failed(shown, code: error.code.description, error.message, key: key, warnings: warnings, input: info)
        }
        let plan = ChunkPlanner.plan(frames: info.frames, inputRate: info.sampleRate, envelope: envelope, format: format, settings: settings)
        if plan.contains(where: { $0.cut == .hard }) {
            warnings.append(AudioWarning(.hardCut, "\(shown): no pause near the part limit; a part was cut mid-speech"))
        }
        let destinations = targets.paths(plan.count)
        if let refusal = await targets.claim(destinations) {
            if plan.count > 1, outcome.part != nil { try? FileManager.default.removeItem(atPath: single) }
            return .failed(shown, code: refusal.code, "\(shown): \(refusal.message)", key: key, warnings: warnings, input: info)
        }

        // Only recordings that need splitting: every part on its own encoder, in parallel,
        // decoding again from the part's first frame.
        let encoded: [EncodedPart]
        if let part = outcome.part, plan.count == 1 {
            encoded = [part]
        } else {
            if outcome.part != nil, destinations[0] != single { try? FileManager.default.removeItem(atPath: single) }
            do {
                encoded = try await withThrowingTaskGroup(of: EncodedPart.self) { group in
                    for part in plan {
                        let destination = destinations[part.index]
                        group.addTask {
                            try await pool.run {
                                try Transcoder.encodePart(part, of: analysis, format: format, settings: settings, to: destination)
                            }
                        }
                    }
                    var parts: [EncodedPart] = []
                    for try await part in group { parts.append(part) }
                    return parts.sorted { $0.index < $1.index }
                }
            } catch let error as AudioError {
                return .failed(shown, code: error.code.description, message(error, writing: destinations[0]), key: key, warnings: warnings, input: info)
            } catch {
                return .failed(shown, code: "encoder_failed", "\(shown): \(error)", key: key, warnings: warnings, input: info)
            }
        }
        let expected = plan.reduce(0) { $0 + $1.outputFrames }
        let written = encoded.reduce(0) { $0 + $1.frames }
        guard expected == written else {
            return .failed(shown, code: "encoder_failed", "\(shown): parts hold \(written) frames, the recording \(expected)", key: key, warnings: warnings, input: info)
        }
        let parts = zip(encoded, plan).map { part, p in
            FileReport.Part(path: part.path, bytes: part.bytes, seconds: part.seconds, frames: part.frames,
                            sampleRate: part.sampleRate, channels: part.channels, sha256: part.sha256,
                            cut: p.cut.rawValue, callLogId: nil)
        }
        var report = FileReport(path: shown, key: key, status: .ok, error: nil, warnings: warnings, input: info,
                                stats: analysis.stats, parts: parts)
        report.waveform = Waveform(windowSeconds: Double(envelope.windowFrames) / Double(info.sampleRate), decibels: envelope.values)
        return report
    }

    /// The error's message; for a full disk, with the space left on the disk of `output`.
    static func message(_ error: AudioError, writing output: String) -> String {
        guard error.code == .diskFull else { return error.message }
        return "\(error.message): \(DiskSpace.fullMessage(Paths.directory(of: output)))"
    }

    /// Recording length against the call log's (research/audio.md §7.2, the CDR rule).
    static func durationCheck(recording: Double, call: Double, shown: String) -> AudioWarning? {
        if recording < call - max(5, call * 0.05) {
            return AudioWarning(.durationMismatch, "\(shown): the recording lasts \(Int(recording.rounded())) s but the call log says \(Int(call.rounded())) s (recording started late or was cut)")
        }
        if recording > call + max(10, call * 0.05) {
            return AudioWarning(.durationMismatch, "\(shown): the recording lasts \(Int(recording.rounded())) s but the call log says \(Int(call.rounded())) s (ringing included, or the wrong file)")
        }
        return nil
    }
}
