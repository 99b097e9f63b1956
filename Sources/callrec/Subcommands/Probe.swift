import ArgumentParser
import CallAudio
import CallPipeline
import Foundation

extension CallRecCommand {
    struct Probe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Decode and validate recordings; print their facts and verdicts."
        )

        @Argument(help: "Recordings to probe.")
        var files: [String]

        @OptionGroup var global: GlobalOptions
        @OptionGroup var validation: ValidationOptions

        struct Entry: Encodable {
            let path: String
            let status: String
            let error: Failure?
            let warnings: [AudioWarning]
            let input: AudioInfo?
            let stats: SignalStats?

            struct Failure: Encodable {
                let code: String
                let message: String
            }

            func encode(to encoder: any Encoder) throws {
                enum K: String, CodingKey { case path, status, error, warnings, input, stats }
                var c = encoder.container(keyedBy: K.self)
                try c.encode(path, forKey: .path)
                try c.encode(status, forKey: .status)
                try c.encode(error, forKey: .error)
                try c.encode(warnings, forKey: .warnings)
                try c.encode(input, forKey: .input)
                try c.encode(stats, forKey: .stats)
            }
        }

        func run() async throws {
            let configuration = validation.configuration()
            let pool = CPUPoolShim(jobs: global.jobs)
            let analyses = await pool.map(files) { AudioAnalyzer.analyze(path: $0, configuration: configuration) }
            let entries = analyses.map { a in
                Entry(path: a.path, status: a.isAccepted ? "ok" : "failed",
                      error: a.error.map { .init(code: $0.code.description, message: $0.message) },
                      warnings: a.warnings, input: a.info, stats: a.stats)
            }
            if global.json {
                struct Document: Encodable {
                    let files: [Entry]
                    let summary: [String: Int]
                }
                let ok = entries.count { $0.status == "ok" }
                try writeJSON(Document(files: entries, summary: ["ok": ok, "failed": entries.count - ok]))
            } else {
                for e in entries { print(Self.describe(e)) }
            }
            if entries.contains(where: { $0.status != "ok" }) { throw ExitCode(ExitStatus.someFailed) }
        }

        static func describe(_ e: Entry) -> String {
            var lines = [e.path]
            if let i = e.input {
                let declared = i.declaredFrames.map { $0 == i.frames ? "" : " (header: \($0))" } ?? " (header: unknown)"
                lines.append("  \(i.format) \(i.subtype), \(i.sampleRate) Hz, \(i.channels) ch, \(i.frames) frames\(declared), \(String(format: "%.3f", i.seconds)) s")
            }
            if let s = e.stats {
                lines.append("  peak \(String(format: "%.1f", s.peakdBFS)) dBFS, speech \(s.activeLeveldBFS.map { String(format: "%.1f", $0) } ?? "–") dBFS, floor \(String(format: "%.1f", s.noiseFloordBFS)) dBFS, active \(String(format: "%.0f", s.activeRatio * 100))%")
            }
            if let error = e.error {
                lines.append("  REJECTED \(error.code): \(error.message)")
            } else {
                lines.append("  ok")
            }
            for w in e.warnings { lines.append("  warning \(w.code): \(w.message)") }
            return lines.joined(separator: "\n")
        }
    }
}

/// Parallel map over blocking work for `probe` (order kept).
struct CPUPoolShim {
    let jobs: Int
    init(jobs: Int) { self.jobs = jobs }

    func map<T: Sendable>(_ items: [String], _ body: @escaping @Sendable (String) -> T) async -> [T] {
        let pool = CPUPool(threads: jobs)
        defer { pool.shutdown() }
        return await withTaskGroup(of: (Int, T).self) { group in
            for (i, item) in items.enumerated() {
                group.addTask { (i, (try? await pool.run { body(item) }) ?? body(item)) }
            }
            var out = [T?](repeating: nil, count: items.count)
            for await (i, value) in group { out[i] = value }
            return out.map { $0! }
        }
    }
}
