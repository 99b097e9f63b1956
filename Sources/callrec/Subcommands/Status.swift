import ArgumentParser
import CallApp
import CallStore
import Foundation

extension CallRecCommand {
    struct Status: AsyncParsableCommand, StoreCommand {
        static let configuration = CommandConfiguration(
            abstract: "Ledger and queue counts, and how long the oldest waiting job has waited."
        )

        @OptionGroup var store: StoreOptions
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let document = try await withStore { store, _ in
                try await StoreStatus.load(store, hints: DeleteHints(store: self.store.settings))
            }
            try global.emit(document, document.lines)
        }
    }
}
