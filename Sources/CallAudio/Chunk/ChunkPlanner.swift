/// One part of a recording: the input frames it covers and the output frames it decodes to.
public struct PartPlan: Sendable, Equatable, Codable {
    /// 0-based position among the parts.
    public let index: Int
    /// First input frame (inclusive) and the end (exclusive), at the input's sample rate.
    public let startFrame: Int64
    public let endFrame: Int64
    /// Frames the part's MP3 decodes to, at the output rate. The parts' counts add up to the
    /// whole recording's output count exactly.
    public let outputFrames: Int64
    /// How the end of this part was chosen.
    public let cut: CutReason

    public enum CutReason: String, Sendable, Codable {
        /// The end of the recording.
        case end
        /// The middle of the longest pause near the limit.
        case silence
        /// No pause long enough: the quietest 100 ms near the limit.
        case quietest
        /// Nothing quiet at all: a hard cut at the limit.
        case hard
    }

    enum CodingKeys: String, CodingKey {
        case index, startFrame = "start_frame", endFrame = "end_frame", outputFrames = "output_frames", cut
    }
}

/// Splits recordings longer than the part limit at pauses (research/audio.md §7.3).
public enum ChunkPlanner {
    /// Plans the parts of a recording of `frames` input frames at `inputRate`.
    ///
    /// Each part is at most `settings.partMaximumSeconds` long and its CBR MP3 at most
    /// `settings.partMaximumBytes` (minus multipart headroom). Cuts fall in the middle of the
    /// longest pause of at least `settings.minimumSilenceSeconds` in the last 20 % (≥ 30 s) before
    /// the limit; failing that, in the quietest 100 ms there; failing that, at the limit. When the
    /// rate changes, cuts sit on input frames that map to whole output frames, so every part's
    /// output length is exact.
    public static func plan(frames: Int64, inputRate: Int, envelope: Envelope, format: OutputFormat,
                            settings: TranscodeSettings) -> [PartPlan] {
        let outRate = Int64(format.sampleRate), inRate = Int64(inputRate)
        let align = inRate / gcd(inRate, outRate)
        func outputAt(_ x: Int64) -> Int64 { (x * outRate + inRate / 2) / inRate }
        let budget = partBudget(inputRate: inputRate, format: format, settings: settings)

        var cuts: [(Int64, PartPlan.CutReason)] = []
        if frames > budget {
            let finder = CutFinder(envelope: envelope, inputRate: inputRate, align: align,
                                   minimumSilence: settings.minimumSilenceSeconds)
            let window = min(max(budget / 5, 30 * inRate), budget / 2)
            var start: Int64 = 0
            while frames - start > budget {
                cuts.append(finder.cut(in: start + budget - window, start + budget, after: start))
                start = cuts[cuts.count - 1].0
            }
            // Tail rule: a sliver at the end is merged into the previous part when that fits,
            // otherwise the last two parts are rebalanced around a pause near their middle.
            let remainder = frames - start
            if remainder < budget / 4 {
                let previous = cuts.count >= 2 ? cuts[cuts.count - 2].0 : 0
                cuts.removeLast()
                if frames - previous > budget {
                    let middle = previous + (frames - previous) / 2
                    let lo = max(middle - window / 2, frames - budget)
                    let hi = min(middle + window / 2, previous + budget)
                    cuts.append(finder.cut(in: lo, hi, after: previous))
                }
            }
        }

        var parts: [PartPlan] = []
        var start: Int64 = 0
        for (index, (end, reason)) in (cuts + [(frames, .end)]).enumerated() {
            parts.append(PartPlan(index: index, startFrame: start, endFrame: end,
                                  outputFrames: outputAt(end) - outputAt(start), cut: reason))
            start = end
        }
        return parts
    }

    /// The most input frames one part may hold: the duration limit, or the MP3 byte limit less
    /// multipart headroom (64 KiB + 2 %) and the tag frame, whichever is smaller; a multiple of
    /// the input frames that map to whole output frames.
    public static func partBudget(inputRate: Int, format: OutputFormat, settings: TranscodeSettings) -> Int64 {
        let outRate = Int64(format.sampleRate), inRate = Int64(inputRate)
        let align = inRate / gcd(inRate, outRate)
        let limit = Double(settings.partMaximumBytes)
        let safety = 64 * 1024 + 0.02 * limit
        let frameBytes = format.frameBytes + 1  // + a padding byte, worst case
        let framesPerPart = Int64(((limit - safety - frameBytes) / frameBytes).rounded(.down)) - 2
        let byBytes = framesPerPart * Int64(format.samplesPerFrame)
        let bySeconds = Int64(settings.partMaximumSeconds * Double(outRate))
        let budgetOut = max(min(byBytes, bySeconds), outRate)
        return max(budgetOut * inRate / outRate / align * align, align)
    }

    private static func gcd(_ a: Int64, _ b: Int64) -> Int64 { b == 0 ? a : gcd(b, a % b) }
}

/// Finds cut points in the energy envelope.
struct CutFinder {
    let envelope: Envelope
    let align: Int64
    let minimumRun: Int
    let threshold: Float

    init(envelope: Envelope, inputRate: Int, align: Int64, minimumSilence: Double) {
        self.envelope = envelope
        self.align = align
        minimumRun = max(1, Int((minimumSilence * Double(inputRate) / Double(envelope.windowFrames)).rounded(.up)))
        // A window is silent below min(−35, max(−55, floor + 8)) dBFS.
        threshold = min(-35, max(-55, envelope.floor + 8))
    }

    /// A cut in input frames within `lo...hi` (and after `after`), with why it was chosen.
    func cut(in lo: Int64, _ hi: Int64, after: Int64) -> (Int64, PartPlan.CutReason) {
        let w = Int64(envelope.windowFrames)
        let values = envelope.values
        let first = Int(max(lo, 0) / w), last = min(Int(hi / w), values.count)  // windows [first, last)
        func aligned(_ x: Int64) -> Int64? {
            let a = x / align * align
            return a > after && a <= hi ? a : nil
        }
        if first < last {
            // Longest silent run (3-window hangover after speech), ties to the later one.
            var best: (start: Int, length: Int)?
            var runStart = -1
            var sinceSpeech = Int.max / 2
            for i in max(first - 3, 0)..<last {
                if values[i] >= threshold {
                    sinceSpeech = 0
                } else {
                    sinceSpeech += 1
                }
                let silent = sinceSpeech > 3 && i >= first
                if silent {
                    if runStart < 0 { runStart = i }
                }
                if !silent || i == last - 1, runStart >= 0 {
                    let end = silent ? i + 1 : i
                    let length = end - runStart
                    if length >= minimumRun, length >= (best?.length ?? 0) { best = (runStart, length) }
                    runStart = -1
                }
            }
            if let best, let c = aligned(Int64(best.start) * w + Int64(best.length) * w / 2) {
                return (c, .silence)
            }
            // The quietest 100 ms (5 windows).
            var quietest: (index: Int, energy: Float)?
            if last - first >= 5 {
                var sum: Float = values[first..<(first + 5)].reduce(0, +)
                quietest = (first, sum)
                for i in (first + 1)..<(last - 4) {
                    sum += values[i + 4] - values[i - 1]
                    if sum <= quietest!.energy { quietest = (i, sum) }
                }
            }
            if let q = quietest, q.energy / 5 < -30, let c = aligned(Int64(q.index) * w + 5 * w / 2) {
                return (c, .quietest)
            }
        }
        // Hard cut at the limit, on an MPEG frame multiple when the rate allows.
        let hard = hi / align * align
        return (max(hard, after + align), .hard)
    }
}
