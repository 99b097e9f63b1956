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
            let document = ProbeDocument(await ProbeEntry.analyze(files, jobs: global.jobs, configuration: validation.configuration()))
            try global.emit(document, document.lines)
            try fail(ExitStatus.someFailed, if: !document.succeeded)
        }
    }
}
