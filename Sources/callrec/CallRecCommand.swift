import ArgumentParser
import CallApp
import CallAudio
import CallJobs
import CallPipeline
import CallStore
import Foundation

@main
struct CallRecCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "callrec",
        abstract: "Validate, transcode and chunk phone-call recordings, and keep them in step with Pipedrive.",
        discussion: """
            Exit codes: 0 everything succeeded; 1 some inputs failed (all the others were still done); 2 usage or configuration error, \
            including a credential an API refused (the run stops at once, names the variable to fix, and its recordings wait for a run \
            with it mended) and work left that no credential here can run; 3 (upload, worker --until-idle) nothing failed but some \
            recordings wait: for the daily budget, a rate-limit pause or Pipedrive's abuse block (run again after the time it prints), or \
            for an API that could not be reached (run again when it can); 4 stopped because a disk is full (the state's database or \
            spool): nothing was lost, free space and run again.
            """,
        version: "callrec 0.1.0 (\(libsndfileVersion), LAME \(lameVersion))",
        subcommands: [Probe.self, Transcode.self, Upload.self, Enqueue.self, Worker.self, Queue.self, Status.self, Delete.self, Reconcile.self, Trash.self, SpoolCommand.self, Sandbox.self, TelnyxCommand.self, Match.self, ConsoleCommand.self]
    )

    /// Parses, runs, and maps errors to the documented exit codes (argument-parser's default for
    /// a usage error is 64; callrec promises 2).
    static func main() async {
        limitMallocArenas()
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand { try await asyncCommand.run() } else { try command.run() }
        } catch {
            exit(withError: error)
        }
    }

    static func exit(withError error: any Error) -> Never {
        // The library's usage errors read as the parser's own (exit 2, the same message).
        let error = (error as? AppError).map { ValidationError($0.message) } ?? error
        let code = exitCode(for: error)
        let message = fullMessage(for: error)
        if code == .success {
            if !message.isEmpty { print(message) }
            Foundation.exit(0)
        }
        if let exit = error as? ExitCode { Foundation.exit(exit.rawValue) }
        if let error = error as? StoreError, error.code == .diskFull {
            FileHandle.standardError.write(Data("stopped: \(error.message)\n".utf8))
            Foundation.exit(ExitStatus.diskFull)
        }
        if !message.isEmpty { FileHandle.standardError.write(Data((message + "\n").utf8)) }
        Foundation.exit(ExitStatus.usage)
    }
}

/// Says on stderr why a run stopped early, and what is left (`left`). A credential the API
/// refused (``JobFailure/Disposition/halt``) is a configuration error: exit 2 here. An
/// unreachable API returns, and the caller's own code for work left waiting applies.
func stopped(by failure: JobFailure, left: String, origins: [String: String] = [:]) throws {
    // A variable the config file set (not the environment): say where its value came from.
    let from = origins.sorted { $0.key < $1.key }.filter { failure.message.contains($0.key) }.map { " (\($0.key) was read from \($0.value))" }.joined()
    standardError("stopped: \(failure.message)\(from). \(left)")
    if failure.disposition == .halt { throw ExitCode(ExitStatus.usage) }
}

/// Exits with `status` when `condition` holds.
func fail(_ status: Int32, if condition: Bool) throws { if condition { throw ExitCode(status) } }

enum ExitStatus {
    static let someFailed: Int32 = 1
    static let usage: Int32 = 2
    /// Nothing failed, but some recordings wait (a spent daily budget, a rate-limit pause, the
    /// abuse block's cool-down, an unreachable API): run again later.
    static let waiting: Int32 = 3
    /// The run stopped because a disk is full (the state's database or the spool): nothing
    /// failed or was lost, the work waits; free space and run again. Not 3: waiting alone
    /// does not mend it, and a cron job must not take it for a budget pause.
    static let diskFull: Int32 = 4
}
