public import CallStore
import Foundation
internal import Logging
internal import PostgresNIO

// PBX sources: source files, CDR rows and cursors (issue 15). Filled in with migration v3.
extension PostgresStore {
    static func applySource(_ op: LedgerOp, _ connection: PostgresConnection, offset: Int64, logger: Logger) async throws {
        throw StoreError(.invalid, "\(op): not implemented yet")
    }

    public func sourceFiles(directory: String) async throws -> [SourceFile] {
        throw StoreError(.invalid, "sourceFiles: not implemented yet")
    }

    public func sourceFile(path: String) async throws -> SourceFile? {
        throw StoreError(.invalid, "sourceFile: not implemented yet")
    }

    public func cdrRows(_ query: CDRRowQuery) async throws -> [StoredCDRRow] {
        throw StoreError(.invalid, "cdrRows: not implemented yet")
    }

    public func cdrCursor(pbx: String, path: String) async throws -> CDRCursor? {
        throw StoreError(.invalid, "cdrCursor: not implemented yet")
    }
}
