#pragma once
// libsoxr 0.1.3 (Debian libsoxr-dev): resampling before LAME when the output rate differs.
#include <soxr.h>
