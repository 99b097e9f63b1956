import CallPhone
import Testing

@Suite struct PhoneNumberTests {
    @Test func nationalAndInternationalFormsGiveOneE164() {
        #expect(PhoneNumbers.normalize("(212) 555-0123", region: "US").e164 == "+12125550123")
        #expect(PhoneNumbers.normalize("011 49 30 1234567", region: "US").e164 == "+49301234567")
        #expect(PhoneNumbers.normalize("garbage", region: "US").e164 == nil)
    }
}
