import CallSources
import Testing

@Suite struct ExtensionSetTests {
    @Test func rangesAndDefault() throws {
        let set = try ExtensionSet.parse("100-199,2000-2099")
        #expect(set.contains("150") && set.contains("2001") && !set.contains("200") && !set.contains("0150"))
        #expect(ExtensionSet.default.contains("10") && ExtensionSet.default.contains("12345") && !ExtensionSet.default.contains("123456"))
        #expect(throws: ExtensionSetError.self) { try ExtensionSet.parse("5-1") }
    }
}

extension ExtensionSetTests {
    @Test func badSpecsNameThePiece() {
        for (spec, piece) in [("100-199,abc", "abc"), ("100-", "100-"), ("", ""), ("099-1000", "099-1000")] {
            #expect { try ExtensionSet.parse(spec) } throws: { ($0 as? ExtensionSetError)?.piece == piece }
        }
        #expect((try? ExtensionSet.parse("0100-0199,500"))?.description == "0100-0199,500")
    }
}
