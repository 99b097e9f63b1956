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
