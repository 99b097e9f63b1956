#pragma once
#include <stdarg.h>
#include <lame/lame.h>

// LAME reports through printf-style callbacks that take a va_list; by default they print to
// stderr. Swift cannot define a C variadic callback, so this shim provides a silent one: LAME's
// errors reach callrec through return codes, which CallAudio checks after every call.
static void ccall_lame_discard_report(const char *format, va_list args) {
    (void)format;
    (void)args;
}

static inline void ccall_lame_silence(lame_t gfp) {
    lame_set_errorf(gfp, ccall_lame_discard_report);
    lame_set_debugf(gfp, ccall_lame_discard_report);
    lame_set_msgf(gfp, ccall_lame_discard_report);
}
