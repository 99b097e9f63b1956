import CallSources
import Foundation
import FuzzSupport

/// Recording paths under a PBX source's root: the first byte picks the layout (FreePBX, 3CX,
/// FusionPBX, sidecar), the rest is the path. A name gives its facts or nil, and the facts give
/// the CDR keys and the call's facts from the name alone.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNames(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let (selector, rest) = FuzzInput(data, size).selector
    let kinds: [SourceKind] = [.freepbx, .threeCX, .fusionpbx, .sidecar]
    let kind = kinds[Int(selector) % kinds.count]
    let path = String(decoding: rest, as: UTF8.self)
    guard let name = Layouts.parse(relativePath: path, kind: kind) else { return 0 }
    _ = CallAssembly.keys(for: name)
    let settings = SourceSettings(kind: kind, root: "/pbx", timeZone: Fixed.zone)
    _ = CallAssembly.fromName(name: name, settings: settings, fileModified: Fixed.modified, audioSeconds: Double(selector))
    return 0
}

/// main.swift's globals would never be set (libFuzzer's main runs, not this file's top level):
/// a static is set on first use.
enum Fixed {
    /// A zone with daylight saving time, so the repeated and the skipped hour are reached.
    static let zone = TimeZone(identifier: "Europe/Berlin")!
    static let modified = Date(timeIntervalSince1970: 1_772_000_000)
}
