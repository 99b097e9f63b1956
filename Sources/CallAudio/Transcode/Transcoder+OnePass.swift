/// What one decode pass of a recording produced.
public struct OnePassOutcome: Sendable {
    /// Validation: ``AudioAnalysis/error`` says whether the recording is rejected.
    public let analysis: AudioAnalysis
    /// The whole recording as one MP3, when it fitted one part and was accepted; nil when it was
    /// rejected, failed to encode (``encodeError``), or needs splitting (plan it from
    /// ``analysis`` and encode the parts with ``Transcoder/encodePart(_:of:format:settings:to:)``).
    public let part: EncodedPart?
    public let encodeError: AudioError?

    public init(analysis: AudioAnalysis, part: EncodedPart?, encodeError: AudioError?) {
        self.analysis = analysis
        self.part = part
        self.encodeError = encodeError
    }
}

extension Transcoder {
    /// Decodes the recording once, validating it and — when its header says it fits in one part
    /// — encoding it in the same pass.
    ///
    /// Most calls are far shorter than the part limit, and for them this halves the decoding
    /// (which matters for GSM, FLAC and Opus: Opus decodes slower than LAME encodes). A recording
    /// whose header says it needs splitting, or that turns out longer than its header said, is only
    /// analysed here; its parts are encoded from the envelope this pass kept. If validation rejects
    /// the recording, the MP3 written on the way is removed. Blocking.
    public static func transcodeInOnePass(path: String, displayPath: String? = nil, validation: ValidationConfiguration,
                                          settings: TranscodeSettings, destination: String) -> OnePassOutcome {
        let shown = displayPath ?? path
        var encoder: OnePassEncoder?
        let analysis = AudioAnalyzer.analyze(path: path, displayPath: shown, configuration: validation) { info in
            guard let declared = info.declaredFrames,
                  let format = try? settings.outputFormat(for: info, path: shown) else { return nil }
            let budget = ChunkPlanner.partBudget(inputRate: info.sampleRate, format: format, settings: settings)
            // Leave headroom: a header a little short of the truth must not overflow the part.
            guard declared <= budget * 9 / 10 else { return nil }
            encoder = OnePassEncoder(format: format, info: info, budget: budget, settings: settings,
                                     destination: destination, shown: shown)
            return encoder
        }
        guard let encoder, analysis.isAccepted, let info = analysis.info, !encoder.overflowed else {
            return OnePassOutcome(analysis: analysis, part: nil, encodeError: nil)  // the sink's deinit removes its file
        }
        if let error = encoder.error {
            return OnePassOutcome(analysis: analysis, part: nil, encodeError: error)
        }
        let rate = Int64(info.sampleRate), out = Int64(encoder.format.sampleRate)
        do {
            let part = try encoder.sink!.finish(index: 0, outputFrames: (info.frames * out + rate / 2) / rate)
            return OnePassOutcome(analysis: analysis, part: part, encodeError: nil)
        } catch {
            return OnePassOutcome(analysis: analysis, part: nil,
                                  encodeError: error as? AudioError ?? AudioError(.encoderFailed, path: shown, "\(error)"))
        }
    }
}

/// Feeds the validation pass's blocks into a ``PartSink``, giving up (without failing) if the
/// recording outgrows one part.
final class OnePassEncoder: BlockConsumer {
    let format: OutputFormat
    let budget: Int64
    private(set) var sink: PartSink?
    private(set) var error: AudioError?
    private(set) var overflowed = false
    private var frames: Int64 = 0

    init(format: OutputFormat, info: AudioInfo, budget: Int64, settings: TranscodeSettings, destination: String, shown: String) {
        self.format = format
        self.budget = budget
        do {
            let blockFrames = max(1, (info.sampleRate + 25) / 50) * max(1, 8192 / max(1, (info.sampleRate + 25) / 50))
            sink = try PartSink(format: format, inputRate: info.sampleRate, inputChannels: info.channels,
                                blockFrames: blockFrames, settings: settings, destination: destination, shown: shown, limit: nil)
        } catch {
            self.error = error as? AudioError ?? AudioError(.encoderFailed, path: shown, "\(error)")
        }
    }

    func consume(_ buffer: UnsafeMutablePointer<Float>, frames n: Int) -> Bool {
        guard let sink, error == nil else { return false }
        frames += Int64(n)
        if frames > budget {
            overflowed = true
            self.sink = nil  // removes the partial file
            return false
        }
        do {
            try sink.feed(buffer, frames: n)
            return true
        } catch {
            self.error = error as? AudioError ?? AudioError(.encoderFailed, path: "", "\(error)")
            self.sink = nil
            return false
        }
    }
}

@available(*, unavailable)
extension OnePassEncoder: Sendable {}
