import CallPipeline
import Foundation
import FuzzSupport

/// The sidecar JSON beside a recording (`call-17.json`): any bytes give a sidecar or the problems
/// naming their fields, never both, never a crash.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSidecar(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = FuzzInput(data, size)
    let (sidecar, problems) = Sidecar.parse(Data(input.bytes))
    if let sidecar {
        check(problems.isEmpty, "a sidecar with problems")
        _ = sidecar.declaredCallSeconds
    } else {
        check(!problems.isEmpty, "no sidecar and no problem")
    }
    return 0
}
