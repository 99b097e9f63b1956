import CallPhone
import Foundation
import Testing

/// libphonenumber behind CallPhone: every way a PBX writes a number gives one E.164, a number it
/// cannot make valid stays as written, and the library never writes to the terminal.
@Suite struct PhoneNumberTests {
    /// (region of the PBX, as written, E.164).
    static let forms: [(String, String, String)] = [
        // US: national, with and without the trunk 1, international, 011 from the US, 00 from Europe.
        ("US", "212-555-0123", "+12125550123"), ("US", "(212) 555-0123", "+12125550123"), ("US", "1 212 555 0123", "+12125550123"),
        ("US", "+1 212.555.0123", "+12125550123"), ("DE", "001 212 555 0123", "+12125550123"), ("US", "2125550123", "+12125550123"),
        ("US", "(617) 555-0199", "+16175550199"),
        // Germany.
        ("DE", "030 1234567", "+49301234567"), ("DE", "030/123 45 67", "+49301234567"), ("DE", "+49 30 1234567", "+49301234567"),
        ("DE", "0049 30 1234567", "+49301234567"), ("US", "011 49 30 1234567", "+49301234567"), ("GB", "00 49 30-1234567", "+49301234567"),
        // United Kingdom.
        ("GB", "020 7946 0018", "+442079460018"), ("GB", "+44 20 7946 0018", "+442079460018"), ("FR", "0044 20 7946 0018", "+442079460018"),
        ("US", "011 44 20 7946 0018", "+442079460018"),
        // France.
        ("FR", "01 23 45 67 89", "+33123456789"), ("FR", "01.23.45.67.89", "+33123456789"), ("FR", "+33 1 23 45 67 89", "+33123456789"),
        ("DE", "00 33 1 23 45 67 89", "+33123456789"), ("US", "011-33-1-23-45-67-89", "+33123456789"),
    ]

    @Test func everyFormOfANumberGivesOneE164() {
        for (region, raw, e164) in Self.forms {
            let number = PhoneNumbers.normalize(raw, region: region)
            #expect(number.e164 == e164, "\(raw) in \(region)")
            #expect(number.raw == raw && number.isValid && number.best == e164)
        }
    }

    @Test func aNumberThatIsNotValidIsKeptAsWritten() {
        for raw in ["555-123-4567", "12", "garbage", "", "+1 000 000 0000"] {
            let number = PhoneNumbers.normalize(raw, region: "US")
            #expect(number.e164 == nil, "\(raw)")
            #expect(number.raw == raw && number.best == raw && !number.isValid)
        }
        // A national number with no region to read it in.
        #expect(PhoneNumbers.normalize("212-555-0123", region: nil).e164 == nil)
        // An unknown region is not a crash either.
        #expect(PhoneNumbers.normalize("212-555-0123", region: "XX").e164 == nil)
    }

    @Test func wrappersAroundTheNumberAreTakenOff() {
        for raw in [#""Doe, John" <2125550123>"#, "sip:2125550123@pbx", "<sip:+12125550123@pbx.example.com;user=phone>", "tel:+1-212-555-0123",
                    "Doe <212-555-0123>"] {
            #expect(PhoneNumbers.normalize(raw, region: "US").e164 == "+12125550123", "\(raw)")
        }
    }

    @Test func internationalFormatAndRegions() {
        #expect(PhoneNumbers.international("+12125550123", region: nil) == "+1 212-555-0123")
        #expect(PhoneNumbers.international("030 1234567", region: "DE") == "+49 30 1234567")
        #expect(PhoneNumbers.isKnownRegion("US") && PhoneNumbers.isKnownRegion("DE") && PhoneNumbers.isKnownRegion("GB"))
        #expect(!PhoneNumbers.isKnownRegion("XX") && !PhoneNumbers.isKnownRegion("") && !PhoneNumbers.isKnownRegion("us1"))
    }

    @Test func manyTasksAtOnceAgree() async {
        let forms = Self.forms
        let wrong = await withTaskGroup(of: Int.self) { group in
            for task in 0..<8 {
                group.addTask {
                    var wrong = 0
                    for i in 0..<10_000 {
                        let (region, raw, e164) = forms[(i + task) % forms.count]
                        if PhoneNumbers.normalize(raw, region: region).e164 != e164 { wrong += 1 }
                    }
                    return wrong
                }
            }
            return await group.reduce(0, +)
        }
        #expect(wrong == 0)
    }

    /// libphonenumber logs (to stdout, by default) on an unknown region or a number it cannot
    /// parse; callrec's terminal output is its own (README), so the shim silences it.
    @Test func theLibraryWritesNothingToTheTerminal() {
        let output = capturingStandardOutputAndError {
            for region in ["XX", "ZZ", "", "US", "QQ"] {
                _ = PhoneNumbers.isKnownRegion(region)
                for raw in ["garbage", "+999 1", "212-555-0123", "", "++--", "0049"] {
                    _ = PhoneNumbers.normalize(raw, region: region)
                    _ = PhoneNumbers.international(raw, region: region)
                }
            }
        }
        // The capture sees what reaches either descriptor (so the check above can fail).
        let probe = capturingStandardOutputAndError {
            _ = write(2, "probe-2\n", 8)
            print("probe-1")
        }
        #expect(probe.contains("probe-2") && probe.contains("probe-1"), "\(probe)")
        // Lines the test runner itself may print meanwhile (other suites run in parallel).
        let foreign = output.split(separator: "\n").filter { !$0.contains("Test ") && !$0.contains("Suite ") }
        #expect(foreign.isEmpty, "\(foreign)")
    }

    /// What `body` writes to file descriptors 1 and 2 (never blocks: the pipe does not).
    func capturingStandardOutputAndError(_ body: () -> Void) -> String {
        fflush(nil)  // every C stream (libphonenumber's std::cout is synced with stdio)
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { return "pipe failed" }
        _ = fcntl(fds[0], F_SETFL, O_NONBLOCK)
        _ = fcntl(fds[1], F_SETFL, O_NONBLOCK)
        let savedOut = dup(1), savedErr = dup(2)
        dup2(fds[1], 1)
        dup2(fds[1], 2)
        body()
        fflush(nil)  // every C stream (libphonenumber's std::cout is synced with stdio)
        dup2(savedOut, 1)
        dup2(savedErr, 2)
        close(savedOut)
        close(savedErr)
        close(fds[1])
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = read(fds[0], &buffer, buffer.count)
            guard n > 0 else { break }
            data.append(contentsOf: buffer[0..<n])
        }
        close(fds[0])
        return String(decoding: data, as: UTF8.self)
    }
}
