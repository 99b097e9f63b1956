#ifndef CCALL_PHONENUMBER_H
#define CCALL_PHONENUMBER_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Result codes of the functions below.
enum {
    CCALL_PHONE_OK = 0,
    /// libphonenumber could not read a number from the text.
    CCALL_PHONE_UNPARSEABLE = 1,
    /// The region is not an ISO 3166 alpha-2 code libphonenumber knows.
    CCALL_PHONE_UNKNOWN_REGION = 2,
    /// `out` is too small for the result (E.164 needs at most 16 bytes with its NUL).
    CCALL_PHONE_BUFFER_TOO_SMALL = 3,
};

/// Parses `raw` as written by a PBX (national, international, with `00`/`011`, with separators),
/// reading a number without a country code as one of `region` (ISO 3166 alpha-2, may be NULL or
/// empty). On CCALL_PHONE_OK writes the E.164 form into `out` (NUL-terminated), and sets `*valid`
/// to 1 when libphonenumber's metadata calls the number valid, `*possible` to 1 when its length is
/// possible. Thread-safe. Never writes to stdout or stderr.
int ccall_phone_e164(const char *raw, const char *region, char *out, size_t cap, int *valid, int *possible);

/// Like ccall_phone_e164, but writes the international format for people (`+1 212-555-0123`).
int ccall_phone_international(const char *raw, const char *region, char *out, size_t cap);

/// 1 when libphonenumber knows `region` (ISO 3166 alpha-2, upper case), else 0.
int ccall_phone_region_known(const char *region);

#ifdef __cplusplus
}
#endif

#endif
