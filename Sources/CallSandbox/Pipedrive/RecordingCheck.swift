import CallAudio
import Foundation

/// Whether an upload is an MP3 a browser can play.
///
/// Pipedrive documents only "audio supported by HTML5" (api-contract §1.7, UNCONFIRMED which
/// formats it takes); the pipeline always sends MP3, so the sandbox holds uploads to that: the
/// bytes must decode as MPEG audio with CallAudio's decoder. Content rules that concern the
/// pipeline's own validation (too short, silent) do not make an upload fail here.
enum RecordingCheck {
    /// Only a file's first `prefixBytes` are decoded (a cut MP3 still decodes): some 5 s of
    /// speech at 24 kbps, dozens of frames, tells MP3 from anything else, and the sandbox does not
    /// spend the CPU of a full decode per upload on the machine that also runs the client (a full
    /// decode was half of the sandbox's time in bench/upload.sh; a 64 KiB copy of the head, a file
    /// created and deleted per upload, still a quarter).
    static let prefixBytes: Int64 = 16 << 10

    /// Nil when `path` holds MP3 audio, else why not.
    static func problem(path: String, filename: String) async -> String? {
        await onThread {
            var configuration = ValidationConfiguration()
            configuration.minimumSeconds = 0
            configuration.maximumSeconds = 10_000 * 3600
            configuration.minimumSampleRate = 1
            configuration.maximumSampleRate = 1_000_000
            let analysis = AudioAnalyzer.analyze(path: path, displayPath: filename, configuration: configuration,
                                                 readingAtMost: prefixBytes)
            guard let info = analysis.info else {
                return analysis.error?.reason ?? "the file could not be read as audio"
            }
            guard info.format == "MPEG" else { return "the file is \(info.format) audio, not MP3" }
            if let error = analysis.error, !acceptedCodes.contains(error.code) { return error.reason }
            return nil
        }
    }

    /// Rejections of the pipeline's content rules, which a CRM does not apply.
    private static let acceptedCodes: Set<AudioError.Code> = [.tooShort, .silentRecording, .corruptFloat]
}

/// Runs blocking work (decoding) on its own thread, keeping the cooperative pool free.
func onThread<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        let thread = Thread { continuation.resume(returning: work()) }
        thread.stackSize = 8 << 20
        thread.start()
    }
}
