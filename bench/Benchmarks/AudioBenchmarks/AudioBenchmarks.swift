import Benchmark
@_spi(Benchmarks) import CallAudio
import CallTesting
import Foundation

// Decode, validate, encode and chunk planning on a 10-minute 8 kHz µ-law call (the commonest
// recording) and a 10-minute 44.1 kHz stereo PCM file (the resampling path). Throughput is in
// audio seconds per wall second via scaledIterations: one iteration = the whole file.

let directory = NSTemporaryDirectory() + "callrec-bench-\(getpid())"
let minutes = 10.0

func fixture(_ name: String, rate: Int, channels: Int, format: SyntheticAudio.Format) -> String {
    let path = "\(directory)/\(name)"
    if !FileManager.default.fileExists(atPath: path) {
        try! FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try! SyntheticAudio.write(.speech(), seconds: minutes * 60, sampleRate: rate, channels: channels, format: format, to: path)
    }
    return path
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .cpuTotal, .throughput, .peakMemoryResident, .mallocCountTotal],
        timeUnits: .milliseconds,
        warmupIterations: 1,
        maxDuration: .seconds(10),
        maxIterations: 20
    )

    let ulaw = fixture("call-8k-ulaw.wav", rate: 8000, channels: 1, format: .wavULaw)
    let wide = fixture("call-44k-stereo.wav", rate: 44100, channels: 2, format: .wavPCM16)

    Benchmark("decode 10 min 8 kHz µ-law") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try AudioAnalyzer.decodeOnly(path: ulaw)) }
    }

    Benchmark("decode+validate 10 min 8 kHz µ-law") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(AudioAnalyzer.analyze(path: ulaw)) }
    }

    Benchmark("decode+validate 10 min 44.1 kHz stereo") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(AudioAnalyzer.analyze(path: wide)) }
    }

    for (name, path) in [("8 kHz µ-law → 24 kbps", ulaw), ("44.1 kHz stereo → 16 kHz 80 kbps", wide)] {
        let analysis = AudioAnalyzer.analyze(path: path)
        let settings = TranscodeSettings()
        let format = try! settings.outputFormat(for: analysis.info!)
        let plan = ChunkPlanner.plan(frames: analysis.info!.frames, inputRate: analysis.info!.sampleRate,
                                     envelope: analysis.envelope!, format: format, settings: settings)
        Benchmark("encode 10 min \(name)") { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(try Transcoder.encodePart(plan[0], of: analysis, format: format, settings: settings,
                                                    to: "\(directory)/out.mp3"))
            }
        }
    }

    // Chunk planning over the envelope of a 2-hour call (360,000 windows), 60-minute parts.
    let windows = 2 * 3600 * 50
    let envelope = Envelope(windowFrames: 160, values: (0..<windows).map { i in (i / 50) % 10 < 7 ? -20 : -70 }, floor: -70)
    let format = try! TranscodeSettings().outputFormat(for: AudioInfo(format: "WAV", subtype: "ULAW", sampleRate: 8000, channels: 1, frames: Int64(windows * 160), declaredFrames: nil))
    Benchmark("plan chunks of a 2 h call", configuration: .init(scalingFactor: .one)) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(ChunkPlanner.plan(frames: Int64(windows * 160), inputRate: 8000, envelope: envelope,
                                        format: format, settings: TranscodeSettings()))
        }
    }
}
