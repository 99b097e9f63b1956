@_spi(Fuzzing) import CallSandbox
import FuzzSupport

/// The sandbox's streaming multipart/form-data parser. The input's first line is the request's
/// Content-Type, the rest its body; the body parsed whole and fed in small pieces (sizes from the
/// Content-Type line's length) gives the same parts, the same completeness, the same refusal.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMultipart(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = FuzzInput(data, size).bytes
    let newline = input.firstIndex(of: 0x0A) ?? input.count
    let contentType = String(decoding: input[..<newline], as: UTF8.self)
    let body = UnsafeRawBufferPointer(rebasing: input[min(newline + 1, input.count)...])
    guard let boundary = MultipartParsing.boundary(contentType: contentType) else { return 0 }
    let whole = MultipartParsing.parse(body, boundary: boundary, pieces: [])
    let pieces = [1, 2, 3, 5, 8, 13].map { $0 + newline % 7 }
    let fed = MultipartParsing.parse(body, boundary: boundary, pieces: pieces)
    check(whole == fed, "the parts depend on how the body was cut into pieces")
    return 0
}
