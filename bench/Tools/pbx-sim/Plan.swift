import CallTesting
import Foundation

/// The quirks a simulated PBX shows (`--quirks`), each with the share of calls it touches.
struct Quirks: Equatable {
    /// Start the clock half a run before the time zone's next DST change after `--start`.
    var dst = false
    /// Share of calls whose CDR row comes `lateDelay` seconds after hangup.
    var lateShare = 0.0
    var lateDelay = 30.0
    /// Share of inbound calls that ring a group (N `NO ANSWER` legs + the answered one, one linkedid).
    var ringGroup = 0.0
    /// Share of recordings converted to MP3 with `lame` after close (the WAV then deleted).
    var wav2mp3 = 0.0
    /// Share of calls from extension to extension.
    var internalShare = 0.0
    /// Share of calls nobody answers.
    var missed = 0.0
    /// Share of caller names with spaces, brackets, parentheses, quotes, commas and non-ASCII letters.
    var oddNames = 0.0

    init() {}

    /// `dst,late-cdr=0.05:30s,ring-group,wav2mp3,internal=0.1,missed=0.1,odd-names`: a share may
    /// follow each name (`ring-group=0.3`); a name alone means its default share.
    init(parsing spec: String) throws {
        for item in spec.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !item.isEmpty {
            let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
            let name = parts[0], value = parts.count > 1 ? parts[1] : nil
            func share(_ fallback: Double) throws -> Double {
                guard let value else { return fallback }
                guard let v = Double(value), v >= 0, v <= 1 else { throw SimError("--quirks \(name)=\(value): the share must be within 0-1") }
                return v
            }
            switch name {
            case "dst": dst = true
            case "late-cdr":
                let fields = (value ?? "0.05:30s").split(separator: ":", maxSplits: 1).map(String.init)
                guard let v = Double(fields[0]), v >= 0, v <= 1 else { throw SimError("--quirks late-cdr=\(value ?? ""): the share must be within 0-1") }
                lateShare = v
                if fields.count > 1 { lateDelay = try seconds(fields[1], flag: "--quirks late-cdr") }
            case "ring-group": ringGroup = try share(0.25)
            case "wav2mp3": wav2mp3 = try share(1)
            case "internal": internalShare = try share(0.1)
            case "missed": missed = try share(0.1)
            case "odd-names": oddNames = try share(0.5)
            default:
                throw SimError("--quirks: unknown quirk \(name) (dst, late-cdr=SHARE:AGE, ring-group, wav2mp3, internal, missed, odd-names)")
            }
        }
    }
}

/// `90s`, `10m`, `1h` or plain seconds.
func seconds(_ text: String, flag: String) throws -> Double {
    let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600]
    var body = Substring(text), unit = 1.0
    if let last = body.last, let u = units[last] {
        unit = u
        body = body.dropLast()
    }
    guard let v = Double(body), v >= 0, v.isFinite else { throw SimError("\(flag): \(text) is not an age (90s, 10m, 1h or seconds)") }
    return v * unit
}

struct SimError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The simulator's one source of choices (CallTesting's SplitMix64), so a seed gives the same calls.
typealias SimRandom = SplitMix64

extension SplitMix64 {
    mutating func digits(_ n: Int) -> String { String((0..<n).map { _ in Character(String(next() % 10)) }) }
}

/// A phone number as the PBX writes it (national digits) and as the call log should carry it.
struct PhoneEntry: Equatable {
    var national: String
    var e164: String
}

/// Small built-in tables of numbers libphonenumber calls valid (decisions D10): fictional or
/// drama ranges, national format with the trunk prefix, digits only as PBXs write them.
enum NumberTable {
    static let regions = ["US", "DE", "GB"]

    static func random(region: String, _ random: inout SimRandom) -> PhoneEntry {
        switch region {
        case "DE":
            // Berlin 030, Munich 089, Hamburg 040, Cologne 0221
            let national = random.pick(["030 12", "089 12", "040 2345", "0221 23"]).replacingOccurrences(of: " ", with: "")
            let number = national + random.digits(national.count == 5 ? 5 : 4)
            return PhoneEntry(national: number, e164: "+49" + number.dropFirst())
        case "GB":
            // Ofcom's drama ranges: 020 7946 0xxx, 0161 496 0xxx, 0117 496 0xxx, 0131 496 0xxx
            let number = random.pick(["02079460", "01614960", "01174960", "01314960"]) + random.digits(3)
            return PhoneEntry(national: number, e164: "+44" + number.dropFirst())
        default:
            // NANP 555-01xx, the fictional range, under real area codes
            let number = random.pick(["212", "617", "415", "312", "305", "206", "303", "404", "646", "718"]) + "55501" + random.digits(2)
            return PhoneEntry(national: number, e164: "+1" + number)
        }
    }
}

enum SimDirection: String, Codable {
    case inbound, outbound, `internal`
}

/// One simulated call: the ground truth every view (file name, CDR rows, manifest) is rendered from.
struct SimCall {
    var index: Int
    var direction: SimDirection
    var answered: Bool
    /// Seconds after the clock's start the call begins (fractional), and its CDR start (whole seconds, epoch).
    var startOffset: Double
    var startEpoch: Int
    var ring: Int
    /// Seconds talked (`billsec`); 0 when nobody answered.
    var talk: Int
    var agent: String
    /// Internal calls: the callee's extension.
    var otherExtension: String?
    var other: PhoneEntry?
    var company: PhoneEntry
    var callerName: String?
    /// Ring group members that did not answer (FreePBX rows only).
    var ringMembers: [String]
    var lateCDR: Bool
    var convert: Bool
    var template: Int
    /// FreePBX: the channel counter of the call's uniqueid.
    var sequence: Int
    /// FusionPBX: the call's uuid; 3CX: the call id.
    var uuid: String

    var answerEpoch: Int { startEpoch + ring }
    var endEpoch: Int { answered ? answerEpoch + talk : startEpoch + ring }
    /// Seconds of audio the recording holds: the talk, or the ringing of a missed call.
    var audioSeconds: Int { answered ? talk : ring }
    /// When the recording opens and closes, in seconds after the clock's start.
    var openOffset: Double { startOffset + Double(answered ? ring : 0) }
    var closeOffset: Double { openOffset + Double(audioSeconds) }
    var uniqueid: String { "\(startEpoch).\(sequence)" }
    var isRingGroup: Bool { !ringMembers.isEmpty }
}

/// The calls of a run, all drawn before anything is written.
struct CallPlan {
    var calls: [SimCall]

    static let agents = (101...140).map(String.init)
    static let names = ["Alice Johnson", "Bob Smith", "Carol White", "David Brown", "Erin Davis", "Frank Miller", "Grace Lee", "Henry Wilson"]
    static let oddNames = ["Doe, John", "José Pérez", "O'Brien [HQ]", "Smith (mobile)", "李小龍", "Anne-Marie  Dubois", "\"Ace\" Ventures",
                           "Zoë & Co. (Berlin) [2]"]

    init(rate: Double, duration: Double, callSeconds: ClosedRange<Int>, seed: UInt64, quirks: Quirks, region: String, start: Date) {
        var random = SimRandom(seed: seed)
        let count = max(1, Int((rate * duration).rounded()))
        let dids = (0..<4).map { _ in NumberTable.random(region: region, &random) }
        calls = (0..<count).map { i in
            let offset = (Double(i) + random.unit()) / rate
            let isInternal = random.chance(quirks.internalShare)
            let direction: SimDirection = isInternal ? .internal : (random.chance(0.5) ? .inbound : .outbound)
            let answered = !random.chance(quirks.missed)
            let agent = random.pick(Self.agents)
            var other: String? = nil
            if isInternal {
                repeat { other = random.pick(Self.agents) } while other == agent
            }
            let external = isInternal ? nil : NumberTable.random(region: region, &random)
            let hasName = random.chance(0.7)
            let name = hasName ? (random.chance(quirks.oddNames) ? random.pick(Self.oddNames) : random.pick(Self.names)) : nil
            var members: [String] = []
            if direction == .inbound, random.chance(quirks.ringGroup) {
                while members.count < 2 {
                    let m = random.pick(Self.agents)
                    if m != agent, !members.contains(m) { members.append(m) }
                }
            }
            let startEpoch = Int((start.timeIntervalSince1970 + offset).rounded(.down))
            let uuid = (0..<4).map { _ in String(format: "%08x", UInt32(truncatingIfNeeded: random.next())) }.joined()
            let dashed = [uuid.prefix(8), uuid.dropFirst(8).prefix(4), "4" + uuid.dropFirst(13).prefix(3),
                          "a" + uuid.dropFirst(17).prefix(3), uuid.dropFirst(20).prefix(12)].joined(separator: "-")
            return SimCall(
                index: i, direction: direction, answered: answered, startOffset: offset, startEpoch: startEpoch,
                ring: answered ? random.int(2...8) : random.int(8...25), talk: answered ? random.int(callSeconds) : 0,
                agent: agent, otherExtension: other, other: external, company: random.pick(dids), callerName: name,
                ringMembers: members, lateCDR: random.chance(quirks.lateShare), convert: random.chance(quirks.wav2mp3),
                template: random.int(0...(AudioTemplates.count - 1)), sequence: 100 + i * 4, uuid: String(dashed))
        }
    }
}
