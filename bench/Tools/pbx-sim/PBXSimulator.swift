import ArgumentParser

/// `callrec-pbx-sim`: writes FreePBX, 3CX and FusionPBX recording trees and their CDRs as a live
/// PBX would (tests and bench/watch.sh).
@main
struct PBXSimulator: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "callrec-pbx-sim", abstract: "Write PBX recording trees and CDRs (tests and benchmarks).")

    func run() async throws {
        // Step-0 stub (WP5 replaces it).
    }
}
