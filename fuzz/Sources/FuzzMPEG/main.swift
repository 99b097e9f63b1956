@_spi(Fuzzing) import CallAudio
import FuzzSupport

/// The MPEG Layer III frame counter, on the file a recording would be: it ends on any bytes and
/// counts no more samples than the frames that fit the file could hold.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMPEG(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = FuzzInput(data, size)
    let path = ScratchFile.holding(input.bytes)
    _ = HeaderReaders.mpegFrame(Array(input.bytes.prefix(4)))
    let samples: Int64?
    do { samples = try HeaderReaders.mpegSamples(path: path) } catch { fatalError("cannot read the scratch file: \(error)") }
    if let samples {
        // No Layer III frame holds more than 24 samples a byte (576 in 24 bytes: 8 kbit/s MPEG 2 at
        // 24 kHz); the last frame's header may lie inside the file and its end beyond it.
        check(samples > 0 && samples <= (Int64(size) / 24 + 1) * 1152, "\(samples) samples in \(size) bytes")
    }
    return 0
}
