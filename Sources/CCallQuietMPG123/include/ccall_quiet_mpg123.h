#pragma once

/// 1 when libmpg123 handles made in this process are quiet: the `mpg123_new` below is the one
/// the dynamic linker hands out (to libsndfile too), so every handle gets MPG123_QUIET.
int ccall_mpg123_quiet(void);
