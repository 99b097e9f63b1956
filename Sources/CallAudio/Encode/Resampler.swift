internal import CCallSoxr

/// Streaming sample-rate conversion with libsoxr, ahead of LAME (LAME's own resampler made the
/// same C loop 1.5× slower). One thread per resampler: parallelism comes from running recordings
/// and parts side by side, not from inside one stream.
final class Resampler {
    private let soxr: soxr_t
    let channels: Int
    private(set) var output: UnsafeMutablePointer<Float>
    private var outputCapacity: Int
    let ratio: Double

    init(from inputRate: Int, to outputRate: Int, channels: Int, quality: TranscodeSettings.ResampleQuality,
         path: String) throws {
        var error: soxr_error_t?
        var io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I)
        let recipe: UInt = switch quality {
        case .quick: UInt(SOXR_QQ)
        case .low: UInt(SOXR_LQ)
        case .medium: UInt(SOXR_MQ)
        case .high: UInt(SOXR_20_BITQ)
        case .veryHigh: UInt(SOXR_28_BITQ)
        }
        var q = soxr_quality_spec(recipe, 0)
        var runtime = soxr_runtime_spec(1)
        guard let s = soxr_create(Double(inputRate), Double(outputRate), UInt32(channels), &error, &io, &q, &runtime),
              error == nil else {
            throw AudioError(.encoderFailed, path: path, "libsoxr: \(error.map { String(cString: $0) } ?? "cannot create a resampler")")
        }
        soxr = s
        self.channels = channels
        ratio = Double(outputRate) / Double(inputRate)
        outputCapacity = 0
        output = .allocate(capacity: 1)
    }

    deinit {
        soxr_delete(soxr)
        output.deallocate()
    }

    private func reserve(_ frames: Int) {
        guard frames > outputCapacity else { return }
        output.deallocate()
        output = .allocate(capacity: frames * channels)
        outputCapacity = frames
    }

    /// Feeds `frames` interleaved frames; returns how many output frames are ready in ``output``.
    /// Pass nil to flush what the filter still holds at the end of the stream.
    func process(_ input: UnsafePointer<Float>?, frames: Int, path: String) throws -> Int {
        let want = Int((Double(frames) * ratio).rounded(.up)) + 1024
        reserve(want)
        var consumed = 0
        var produced = 0
        repeat {
            var idone = 0, odone = 0
            let inPtr = input.map { UnsafeRawPointer($0 + consumed * channels) }
            let outPtr = UnsafeMutableRawPointer(output + produced * channels)
            let err = soxr_process(soxr, inPtr, frames - consumed, &idone, outPtr, outputCapacity - produced, &odone)
            if let err { throw AudioError(.encoderFailed, path: path, "libsoxr: \(String(cString: err))") }
            consumed += idone
            produced += odone
            if input == nil {
                if odone == 0 { break }
            } else if consumed >= frames {
                break
            } else if idone == 0 && odone == 0 {
                break
            }
            if produced == outputCapacity {
                // Grow and keep draining: rare, only when the filter releases a backlog.
                let old = output, oldCapacity = outputCapacity
                output = .allocate(capacity: oldCapacity * 2 * channels)
                output.update(from: old, count: produced * channels)
                old.deallocate()
                outputCapacity = oldCapacity * 2
            }
        } while true
        return produced
    }
}

@available(*, unavailable)
extension Resampler: Sendable {}
