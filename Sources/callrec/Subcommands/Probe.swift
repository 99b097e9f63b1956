import ArgumentParser
import CallAudio
import CallApp
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

        func run() async throws {
            let entries = await ProbeEntry.analyze(files, jobs: global.jobs, configuration: validation.configuration())
            if global.json {
                struct Document: Encodable {
                    let files: [ProbeEntry]
                    let summary: [String: Int]
                }
                let ok = entries.count { $0.status == "ok" }
                try writeJSON(Document(files: entries, summary: ["ok": ok, "failed": entries.count - ok]))
            } else {
                for e in entries { print(Self.describe(e)) }
            }
            if entries.contains(where: { $0.status != "ok" }) { throw ExitCode(ExitStatus.someFailed) }
        }

        static func describe(_ e: ProbeEntry) -> String {
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
