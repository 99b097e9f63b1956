/// How to open a recording: its path plus, for a salvaged WAV, the header patches. Kept in the
/// analysis so the encode pass opens the file exactly as the validation pass did.
struct SourcePlan: Sendable, Equatable {
    struct Patch: Sendable, Equatable {
        let offset: Int64
        let bytes: [UInt8]
    }

    let path: String
    let displayPath: String
    let patches: [Patch]
    /// Read no further than this many bytes (``AudioAnalyzer/analyze(path:displayPath:configuration:readingAtMost:)``).
    var byteLimit: Int64? = nil

    func openBytes() throws(AudioError) -> FileBytes {
        try FileBytes(path: path, patches: patches.map { ($0.offset, $0.bytes) }, limit: byteLimit)
    }

    func open() throws(AudioError) -> SndFile {
        let bytes = try openBytes()
        do {
            return try SndFile(bytes: bytes)
        } catch {
            throw AudioAnalyzer.classifyOpenFailure(error, path: displayPath)
        }
    }
}

/// Streams interleaved float frames from a ``SndFile`` in fixed-size blocks through one reused
/// buffer: memory does not grow with the recording's length.
final class BlockReader {
    let file: SndFile
    let blockFrames: Int
    let buffer: UnsafeMutablePointer<Float>
    /// libsndfile's message when a short read was a decode error rather than the end.
    private(set) var decodeError: String?
    private(set) var finished = false

    init(file: SndFile, blockFrames: Int) {
        self.file = file
        self.blockFrames = blockFrames
        buffer = .allocate(capacity: blockFrames * max(file.channels, 1))
    }

    deinit { buffer.deallocate() }

    /// Reads the next block, at most `limit` frames. Returns 0 at the end.
    func next(limit: Int? = nil) -> Int {
        guard !finished else { return 0 }
        let want = min(blockFrames, limit ?? blockFrames)
        guard want > 0 else { return 0 }
        let (n, error) = file.read(into: buffer, frames: want)
        if n < want {
            finished = true
            decodeError = error
        }
        return n
    }
}

@available(*, unavailable)
extension BlockReader: Sendable {}
