#pragma once
// libsndfile 1.2 (Debian libsndfile1-dev). Only the header; every call goes through
// CallAudio/SndFile, which serialises sf_open and checks sf_error right after short reads.
#include <sndfile.h>
