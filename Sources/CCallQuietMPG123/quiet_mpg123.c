// libmpg123 prints its warnings and notes ("Warning: Xing stream size off by more than 1%, fuzzy
// seeking may be even more fuzzy than by design!", "Note: Illegal Audio-MPEG-Header …") with
// fprintf(stderr) unless a handle has the MPG123_QUIET flag. libsndfile makes the handles it
// decodes MPEG audio with and offers no way to set that flag, so a cut or odd MP3 wrote those
// lines to the user's terminal behind callrec's back. callrec reports what such a file means
// itself (truncated, not decodable …).
//
// This definition of mpg123_new takes the place of libmpg123's for every caller in the process:
// an executable's symbols come first in the dynamic linker's lookup, and the linker exports this
// one because libsndfile refers to it. It makes the handle with libmpg123's own mpg123_new (the
// next definition after this one) and adds MPG123_QUIET, which silences every message of that
// handle. A crash still reaches the terminal: it is not one of libmpg123's messages.
#include "ccall_quiet_mpg123.h"

#ifdef __linux__
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>
#include <mpg123.h>

typedef mpg123_handle *(*ccall_mpg123_new_function)(const char *, int *);

__attribute__((visibility("default")))
mpg123_handle *mpg123_new(const char *decoder, int *error) {
    ccall_mpg123_new_function make = (ccall_mpg123_new_function)dlsym(RTLD_NEXT, "mpg123_new");
    if (make == NULL) {
        if (error != NULL) *error = MPG123_ERR;
        return NULL;
    }
    mpg123_handle *handle = make(decoder, error);
    if (handle != NULL) mpg123_param(handle, MPG123_ADD_FLAGS, MPG123_QUIET, 0.0);
    return handle;
}

int ccall_mpg123_quiet(void) {
    return dlsym(RTLD_DEFAULT, "mpg123_new") == (void *)mpg123_new;
}

#else
// Elsewhere (two-level namespaces on Darwin) a definition here would not take libmpg123's place.
int ccall_mpg123_quiet(void) {
    return 0;
}
#endif
