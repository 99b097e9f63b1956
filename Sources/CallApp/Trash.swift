public import CallPipeline
public import CallStore

/// `callrec trash purge`: a folder goes only when its recording's deletion has finished.
public enum TrashPurge {
    public static func run(_ store: any CallStore, settings: StoreSettings, olderThan age: Duration) async -> Trash.PurgeReport {
        let trash = Trash(root: settings.trashDirectory)
        return await trash.purge(olderThan: age) { entry in
            do {
                guard let recording = try await store.recording(key: entry.key) else { return nil }
                return recording.state == .deleted ? nil : "its deletion has not finished (the recording is \(recording.state.rawValue))"
            } catch {
                return "cannot read the ledger: \(error)"
            }
        }
    }
}
