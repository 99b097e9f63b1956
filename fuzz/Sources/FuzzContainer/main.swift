@_spi(Fuzzing) import CallAudio
import FuzzSupport

/// The container sniffer and the WAV header salvage, on the file a recording would be: the
/// patched view the decoder reads has the file's length and differs from it only inside the
/// patches; the unfinished-header check answers for any bytes. The first byte sets the block size
/// the view is read in; the rest is the file.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzContainer(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let (selector, file) = FuzzInput(data, size).selector
    let path = ScratchFile.holding(file)
    _ = HeaderReaders.container(Array(file.prefix(16)))
    _ = WAVHeader.unfinished(path: path)
    guard let read = try? HeaderReaders.salvage(path: path, block: 1 + Int(selector)) else {
        fatalError("cannot read the scratch file")
    }
    check(read.bytes.count == file.count, "the patched view is \(read.bytes.count) bytes, the file \(file.count)")
    for (index, byte) in read.bytes.enumerated() where byte != file[index] {
        check(read.patches.contains { Int($0.offset) <= index && index < Int($0.offset) + $0.bytes.count },
                     "byte \(index) changed outside the patches")
    }
    return 0
}
