// The C interface over libphonenumber's PhoneNumberUtil (a process-wide singleton whose methods
// are const and thread-safe). Exceptions never cross into Swift, and the library's logger is
// replaced by a silent one, so nothing reaches the user's terminal.
#include "ccall_phonenumber.h"

#include <phonenumbers/logger.h>
#include <phonenumbers/phonenumber.pb.h>
#include <phonenumbers/phonenumberutil.h>

#include <cstring>
#include <mutex>
#include <string>

using i18n::phonenumbers::NullLogger;
using i18n::phonenumbers::PhoneNumber;
using i18n::phonenumbers::PhoneNumberUtil;

namespace {

const PhoneNumberUtil *util() {
    static std::once_flag once;
    std::call_once(once, [] { PhoneNumberUtil::GetInstance()->SetLogger(new NullLogger()); });
    return PhoneNumberUtil::GetInstance();
}

int copy_out(const std::string &text, char *out, size_t cap) {
    if (out == nullptr || text.size() + 1 > cap) return CCALL_PHONE_BUFFER_TOO_SMALL;
    std::memcpy(out, text.c_str(), text.size() + 1);
    return CCALL_PHONE_OK;
}

int parse(const char *raw, const char *region, PhoneNumber *number) {
    if (raw == nullptr) return CCALL_PHONE_UNPARSEABLE;
    std::string code = (region != nullptr && region[0] != '\0') ? region : "ZZ";
    if (code != "ZZ" && util()->GetCountryCodeForRegion(code) == 0) return CCALL_PHONE_UNKNOWN_REGION;
    return util()->Parse(raw, code, number) == PhoneNumberUtil::NO_PARSING_ERROR ? CCALL_PHONE_OK : CCALL_PHONE_UNPARSEABLE;
}

}  // namespace

extern "C" int ccall_phone_e164(const char *raw, const char *region, char *out, size_t cap, int *valid, int *possible) {
    try {
        PhoneNumber number;
        int result = parse(raw, region, &number);
        if (result != CCALL_PHONE_OK) return result;
        std::string text;
        util()->Format(number, PhoneNumberUtil::E164, &text);
        if (valid != nullptr) *valid = util()->IsValidNumber(number) ? 1 : 0;
        if (possible != nullptr) *possible = util()->IsPossibleNumber(number) ? 1 : 0;
        return copy_out(text, out, cap);
    } catch (...) {
        return CCALL_PHONE_UNPARSEABLE;
    }
}

extern "C" int ccall_phone_international(const char *raw, const char *region, char *out, size_t cap) {
    try {
        PhoneNumber number;
        int result = parse(raw, region, &number);
        if (result != CCALL_PHONE_OK) return result;
        std::string text;
        util()->Format(number, PhoneNumberUtil::INTERNATIONAL, &text);
        return copy_out(text, out, cap);
    } catch (...) {
        return CCALL_PHONE_UNPARSEABLE;
    }
}

extern "C" int ccall_phone_region_known(const char *region) {
    try {
        return region != nullptr && util()->GetCountryCodeForRegion(region) != 0 ? 1 : 0;
    } catch (...) {
        return 0;
    }
}
