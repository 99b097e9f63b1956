/*
 * gen_corpus — writes the benchmark corpus: synthetic, speech-like phone calls in mixed telephony
 * formats, with a sidecar JSON per call and a manifest. Deterministic for a given seed.
 *
 *   gen_corpus -o DIR [-s SEED] [-n CALLS] [-a MIN_S] [-b MAX_S] [-l LONG_S] [-L LONG_NAME]
 *
 * Layout:
 *   DIR/calls/2026-11-DD/call-NNNN-<format>.<wav|flac> (+ .json)   every basename is unique
 *   DIR/long/<LONG_NAME>.wav (+ .json)                             one long 8 kHz µ-law call
 *   DIR/manifest.tsv   relpath \t format \t sample_rate \t channels \t frames \t seconds
 *
 * The signal: two speakers take turns (talk 2-8 s, pause 0.5-3 s). A voice is a band-limited
 * harmonic series (f0 110-140 Hz or 180-220 Hz, gliding a little within a turn, 1/k^0.8 tilt with
 * two formant bumps, harmonics below 3.4 kHz) under a 3.5-4.5 Hz syllable envelope; peaks reach about
 * -8 dBFS. A white-noise floor at about -65 dBFS RMS runs under everything. In the two-leg stereo
 * files the agent speaks on the left and the customer on the right; each leg carries only its noise
 * floor while the other talks.
 *
 * Build: gcc -O2 -o gen_corpus gen_corpus.c -lsndfile -lm
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <sndfile.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

enum { BLOCK = 8192, TABLE = 2048 };

/* ---- deterministic PRNG (splitmix64) ---- */
static uint64_t rng_state;
static uint64_t rng_u64(void) {
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static double rng_uniform(double lo, double hi) { return lo + (hi - lo) * (double)(rng_u64() >> 11) * (1.0 / 9007199254740992.0); }

/* a cheap, separate noise generator (xorshift32) so the noise does not shift the call plan */
static uint32_t noise_state = 2463534242u;
static inline float noise(void) {
    uint32_t x = noise_state;
    x ^= x << 13; x ^= x >> 17; x ^= x << 5;
    noise_state = x;
    return (float)((int32_t)x) * (1.0f / 2147483648.0f);  /* uniform in [-1, 1) */
}

typedef struct {
    const char *name;
    int major, subtype, rate, channels;
    const char *ext;
} format;

static const format FORMATS[] = {
    {"ulaw8k",   SF_FORMAT_WAV,  SF_FORMAT_ULAW,   8000, 1, "wav"},
    {"alaw8k",   SF_FORMAT_WAV,  SF_FORMAT_ALAW,   8000, 1, "wav"},
    {"pcm8k",    SF_FORMAT_WAV,  SF_FORMAT_PCM_16, 8000, 1, "wav"},
    {"gsm8k",    SF_FORMAT_WAV,  SF_FORMAT_GSM610, 8000, 1, "wav"},
    {"pcm16k",   SF_FORMAT_WAV,  SF_FORMAT_PCM_16, 16000, 1, "wav"},
    {"legs8k",   SF_FORMAT_WAV,  SF_FORMAT_PCM_16, 8000, 2, "wav"},
    {"flac16k",  SF_FORMAT_FLAC, SF_FORMAT_PCM_16, 16000, 1, "flac"},
    {"pcm44k",   SF_FORMAT_WAV,  SF_FORMAT_PCM_16, 44100, 1, "wav"},
    {"pcm48k",   SF_FORMAT_WAV,  SF_FORMAT_PCM_16, 48000, 1, "wav"},
};
/* one cycle of 20 calls: the mix of a typical PBX spool (µ-law dominates) */
static const int CYCLE[20] = {0, 1, 2, 3, 4, 5, 0, 6, 7, 0, 1, 3, 4, 5, 0, 2, 8, 0, 1, 0};

static const char *OUTCOMES[] = {"connected", "connected", "connected", "left_message", "left_voicemail",
                                 "no_answer", "wrong_number", "busy"};

/* ---- one voice turn ---- */
typedef struct {
    float table[TABLE + 1];
    double f0, f0_end, phase, syl_rate, syl_phase;
} voice;

static void voice_init(voice *v, double f0, int rate) {
    (void)rate;
    v->f0 = f0;
    v->f0_end = f0 * rng_uniform(0.88, 1.12);
    v->phase = 0;
    v->syl_rate = rng_uniform(3.5, 4.5);
    v->syl_phase = rng_uniform(0, 1);
    double fmax = (f0 > v->f0_end ? f0 : v->f0_end);
    int K = (int)(3400.0 / fmax);
    if (K < 1) K = 1;
    double amp[64];
    if (K > 64) K = 64;
    double f1 = rng_uniform(450, 750), f2 = rng_uniform(1200, 1900);
    for (int k = 1; k <= K; k++) {
        double fk = k * f0;
        amp[k - 1] = pow((double)k, -0.8) * (1.0 + 2.5 * exp(-pow((fk - f1) / 180.0, 2)) + 1.5 * exp(-pow((fk - f2) / 260.0, 2)));
    }
    double peak = 0;
    for (int i = 0; i < TABLE; i++) {
        double x = 0, t = (double)i / TABLE;
        for (int k = 1; k <= K; k++) x += amp[k - 1] * sin(2 * M_PI * k * t + 0.7 * k * k);
        v->table[i] = (float)x;
        if (fabs(x) > peak) peak = fabs(x);
    }
    for (int i = 0; i < TABLE; i++) v->table[i] = (float)(v->table[i] / peak);
    v->table[TABLE] = v->table[0];
}

/* sample n of len from a turn: voice under a syllable envelope with soft start/end */
static inline float voice_sample(voice *v, long n, long len, int rate) {
    double frac = (double)n / (double)len;
    double f = v->f0 + (v->f0_end - v->f0) * frac;
    v->phase += f / rate;
    if (v->phase >= 1.0) v->phase -= 1.0;
    double p = v->phase * TABLE;
    int i = (int)p;
    float a = v->table[i], b = v->table[i + 1];
    float x = a + (b - a) * (float)(p - i);
    v->syl_phase += v->syl_rate / rate;
    if (v->syl_phase >= 1.0) v->syl_phase -= 1.0;
    double s = sin(2 * M_PI * v->syl_phase);          /* syllables: rises and falls ~4 times a second */
    double env = s > -0.3 ? pow((s + 0.3) / 1.3, 0.8) : 0.0;
    double edge = 0.02 * rate;                          /* 20 ms fades at turn edges */
    if (n < edge) env *= n / edge;
    if (len - n < edge) env *= (len - n) / edge;
    return (float)(0.4 * env) * x;
}

/* writes one call of `frames` frames; returns 0 on success */
static int write_call(const char *path, const format *fmt, long frames) {
    SF_INFO info = {0};
    info.samplerate = fmt->rate;
    info.channels = fmt->channels;
    info.format = fmt->major | fmt->subtype;
    SNDFILE *sf = sf_open(path, SFM_WRITE, &info);
    if (!sf) { fprintf(stderr, "gen_corpus: %s: %s\n", path, sf_strerror(NULL)); return -1; }
    static float buf[BLOCK * 2];
    const int rate = fmt->rate, ch = fmt->channels;
    const float floor_amp = 0.00097f;  /* uniform noise of this amplitude is -65 dBFS RMS */

    voice v;
    int speaker = (int)(rng_u64() & 1);
    long pos = 0, turn_start = 0, turn_len = 0, pause_len = (long)(rng_uniform(0.3, 1.0) * rate);
    int talking = 0;
    while (pos < frames) {
        long n = frames - pos < BLOCK ? frames - pos : BLOCK;
        for (long i = 0; i < n; i++, pos++) {
            if (!talking && pos >= turn_start + pause_len) {
                /* next turn */
                talking = 1;
                speaker ^= 1;
                turn_start = pos;
                turn_len = (long)(rng_uniform(2.0, 8.0) * rate);
                voice_init(&v, speaker ? rng_uniform(180, 220) : rng_uniform(110, 140), rate);
            } else if (talking && pos >= turn_start + turn_len) {
                talking = 0;
                turn_start = pos;
                turn_len = 0;
                pause_len = (long)(rng_uniform(0.5, 3.0) * rate);
            }
            float s = talking ? voice_sample(&v, pos - turn_start, turn_len, rate) : 0.0f;
            if (ch == 2) {
                buf[2 * i] = (speaker == 0 ? s : 0.0f) + floor_amp * noise();
                buf[2 * i + 1] = (speaker == 1 ? s : 0.0f) + floor_amp * noise();
            } else {
                buf[i] = s + floor_amp * noise();
            }
        }
        if (sf_writef_float(sf, buf, n) != n) {
            fprintf(stderr, "gen_corpus: %s: write failed: %s\n", path, sf_strerror(sf));
            sf_close(sf);
            return -1;
        }
    }
    return sf_close(sf) == 0 ? 0 : -1;
}

static void utc(char *out, size_t cap, time_t t) {
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%d %H:%M:%S", &tm);
}

static int write_sidecar(const char *audio_path, long frames, int rate, time_t start, int index) {
    char path[4096];
    snprintf(path, sizeof path, "%s", audio_path);
    char *dot = strrchr(path, '.');
    if (dot) strcpy(dot, ".json");
    FILE *f = fopen(path, "w");
    if (!f) { fprintf(stderr, "gen_corpus: %s: %s\n", path, strerror(errno)); return -1; }
    char s[32], e[32];
    long secs = (frames + rate / 2) / rate;
    utc(s, sizeof s, start);
    utc(e, sizeof e, start + (secs < 1 ? 1 : secs));
    const char *outcome = OUTCOMES[index % (int)(sizeof OUTCOMES / sizeof *OUTCOMES)];
    fprintf(f,
            "{\n  \"call_log\": {\n    \"outcome\": \"%s\",\n    \"to_phone_number\": \"+1555%07d\",\n"
            "    \"from_phone_number\": \"+15559870000\",\n    \"start_time\": \"%s\",\n    \"end_time\": \"%s\",\n"
            "    \"subject\": \"Benchmark call %d\",\n    \"person_id\": %d,\n    \"deal_id\": %d,\n    \"user_id\": 7\n  },\n"
            "  \"call_log_id\": null\n}\n",
            outcome, 1000000 + index, s, e, index, 1000 + index, 5000 + index);
    return fclose(f) == 0 ? 0 : -1;
}

static int mkdirs(const char *dir) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", dir);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
            *p = '/';
        }
    }
    return mkdir(tmp, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

static void usage(void) {
    fprintf(stderr, "usage: gen_corpus -o DIR [-s SEED] [-n CALLS] [-a MIN_S] [-b MAX_S] [-l LONG_S] [-L LONG_NAME]\n");
    exit(2);
}

int main(int argc, char **argv) {
    const char *dir = NULL, *long_name = "call-2h";
    unsigned long long seed = 20261120;
    int calls = 200, opt;
    double min_s = 30, max_s = 180, long_s = 7200;
    while ((opt = getopt(argc, argv, "o:s:n:a:b:l:L:")) != -1) {
        switch (opt) {
        case 'o': dir = optarg; break;
        case 's': seed = strtoull(optarg, NULL, 10); break;
        case 'n': calls = atoi(optarg); break;
        case 'a': min_s = atof(optarg); break;
        case 'b': max_s = atof(optarg); break;
        case 'l': long_s = atof(optarg); break;
        case 'L': long_name = optarg; break;
        default: usage();
        }
    }
    if (!dir || calls < 0 || min_s <= 0 || max_s < min_s || long_s < 0) usage();
    rng_state = seed;
    noise_state = (uint32_t)(seed * 2654435761u) | 1u;

    char path[4096];
    snprintf(path, sizeof path, "%s/manifest.tsv", dir);
    if (mkdirs(dir) != 0) { perror(dir); return 1; }
    FILE *manifest = fopen(path, "w");
    if (!manifest) { perror(path); return 1; }
    fprintf(manifest, "path\tformat\tsample_rate\tchannels\tframes\tseconds\n");

    const time_t day0 = 1795165200; /* 2026-11-20 09:00:00 UTC */
    double total = 0;
    for (int i = 0; i < calls; i++) {
        const format *fmt = &FORMATS[CYCLE[i % 20]];
        rng_state = seed + 0x632BE59BD9B4E019ull * (uint64_t)(i + 1);  /* each call independent of the others */
        double secs = rng_uniform(min_s, max_s);
        long frames = (long)(secs * fmt->rate);
        /* GSM 6.10 in WAV stores 65-byte blocks of 320 samples. With an odd number of blocks the
           data chunk has an odd size and a RIFF pad byte, and libsndfile 1.2.0 then counts one more
           block than there is (+320 frames; ffmpeg does not). An even number of blocks keeps every
           decoder and the manifest in agreement. */
        if (fmt->subtype == SF_FORMAT_GSM610) frames -= frames % 640;
        int day = i % 10;
        char sub[64];
        snprintf(sub, sizeof sub, "calls/2026-11-%02d", 20 + day);
        snprintf(path, sizeof path, "%s/%s", dir, sub);
        if (mkdirs(path) != 0) { perror(path); return 1; }
        snprintf(path, sizeof path, "%s/%s/call-%04d-%s.%s", dir, sub, i + 1, fmt->name, fmt->ext);
        if (write_call(path, fmt, frames) != 0) return 1;
        time_t start = day0 + day * 86400 + (time_t)(i / 10) * 600;
        if (write_sidecar(path, frames, fmt->rate, start, i + 1) != 0) return 1;
        fprintf(manifest, "%s/call-%04d-%s.%s\t%s\t%d\t%d\t%ld\t%.6f\n", sub, i + 1, fmt->name, fmt->ext, fmt->name,
                fmt->rate, fmt->channels, frames, (double)frames / fmt->rate);
        total += (double)frames / fmt->rate;
    }
    if (long_s > 0) {
        const format *fmt = &FORMATS[0];
        rng_state = seed ^ 0xD1B54A32D192ED03ull;
        snprintf(path, sizeof path, "%s/long", dir);
        if (mkdirs(path) != 0) { perror(path); return 1; }
        long frames = (long)(long_s * fmt->rate);
        snprintf(path, sizeof path, "%s/long/%s.wav", dir, long_name);
        if (write_call(path, fmt, frames) != 0) return 1;
        if (write_sidecar(path, frames, fmt->rate, day0 - 86400, 0) != 0) return 1;
        fprintf(manifest, "long/%s.wav\t%s\t%d\t%d\t%ld\t%.6f\n", long_name, fmt->name, fmt->rate, fmt->channels,
                frames, (double)frames / fmt->rate);
        total += (double)frames / fmt->rate;
    }
    if (fclose(manifest) != 0) { perror("manifest"); return 1; }
    fprintf(stderr, "gen_corpus: %d calls + %s long call, %.2f h of audio in %s\n", calls, long_s > 0 ? "1" : "no",
            total / 3600, dir);
    return 0;
}
