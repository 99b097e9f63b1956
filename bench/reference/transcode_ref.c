/*
 * transcode_ref — the floor for `callrec transcode`: the same work with no overhead.
 *
 *   transcode_ref [-v] -j N -o OUTDIR FILE...
 *   transcode_ref [-v] -j N -o OUTDIR -          (one path per line on stdin)
 *
 * N pthreads pull files from one shared list. Each file is decoded with libsndfile in blocks of
 * 8192 frames into reused buffers, channels are kept (1, 2) or averaged to mono (> 2), every sample
 * is sanitised (non-finite -> 0, clamped to [-1, 1]), rates above 16 kHz are resampled to 16 kHz
 * with libsoxr (HQ, one thread), and the result is encoded by LAME as CBR (24/32/40/56/64 kbps per
 * channel by output rate, STEREO for two channels, quality 5) with the LAME/Info tag patched in at
 * offset 0. Output: OUTDIR/<basename without extension>.mp3. These are callrec's defaults
 * (DESIGN.md §3, research/audio.md §7.1), minus validation, chunking and the ledger.
 *
 * -v prints one line per file on stdout:
 *   <path>\t<in_frames>\t<in_rate>\t<in_channels>\t<out_frames>\t<out_rate>\t<out_channels>\t<mp3_bytes>
 *
 * Exit status: 0 if every file was transcoded, 1 if any failed (the others are still done), 2 on usage.
 *
 * Build: gcc -O2 -Wall -o transcode_ref transcode_ref.c -lsndfile -lmp3lame -lsoxr -lpthread
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <lame/lame.h>
#include <math.h>
#include <pthread.h>
#include <sndfile.h>
#include <soxr.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { BLOCK = 8192 };

static char **files;
static size_t nfiles;
static atomic_size_t next_file;
static atomic_int failures;
static const char *outdir;
static int verbose;
static pthread_mutex_t open_lock = PTHREAD_MUTEX_INITIALIZER;  /* sf_open's error state is global */
static pthread_mutex_t print_lock = PTHREAD_MUTEX_INITIALIZER;

static void quiet(const char *fmt, va_list ap) { (void)fmt; (void)ap; }

static void fail(const char *path, const char *what) {
    pthread_mutex_lock(&print_lock);
    fprintf(stderr, "transcode_ref: %s: %s\n", path, what);
    pthread_mutex_unlock(&print_lock);
    atomic_fetch_add(&failures, 1);
}

/* per-channel CBR kbps by output rate (the lowest that still carries the LAME tag) */
static int kbps_per_channel(int rate) {
    if (rate <= 8000) return 24;
    if (rate <= 12000) return 32;
    if (rate <= 16000) return 40;
    if (rate <= 22050) return 56;
    return 64;
}

static int lame_rate_ok(int rate) {
    switch (rate) {
    case 8000: case 11025: case 12000: case 16000: case 22050: case 24000:
    case 32000: case 44100: case 48000: return 1;
    default: return 0;
    }
}

typedef struct {
    float *in;        /* BLOCK * in_channels, interleaved, straight from libsndfile */
    float *mixed;     /* BLOCK * out_channels, sanitised */
    float *resampled; /* rs_cap * out_channels */
    size_t rs_cap;
    unsigned char *mp3;     /* reused encode buffer */
    unsigned char *flushbuf; /* a fresh full-size buffer for every flush */
    size_t mp3_cap;
    int in_channels_cap;
} buffers;

static int ensure(buffers *b, int in_ch) {
    if (in_ch > b->in_channels_cap) {
        float *p = realloc(b->in, (size_t)BLOCK * (size_t)in_ch * sizeof(float));
        if (!p) return -1;
        b->in = p;
        b->in_channels_cap = in_ch;
    }
    return 0;
}

/* Encode `n` frames of `pcm` (interleaved, `ch` channels); write what LAME returns. */
static int encode(lame_t l, int fd, buffers *b, const float *pcm, size_t n, int ch, size_t *bytes) {
    size_t off = 0;
    while (off < n) {
        size_t chunk = n - off;
        if (chunk > BLOCK) chunk = BLOCK;
        int cap = (int)(1.25 * (double)chunk + 7200);
        int got = ch == 2
            ? lame_encode_buffer_interleaved_ieee_float(l, pcm + off * 2, (int)chunk, b->mp3, cap)
            : lame_encode_buffer_ieee_float(l, pcm + off, pcm + off, (int)chunk, b->mp3, cap);
        if (got < 0) return got;
        if (got > 0 && write(fd, b->mp3, (size_t)got) != got) return -100;
        *bytes += (size_t)got;
        off += chunk;
    }
    return 0;
}

static void transcode(const char *path, buffers *b) {
    SF_INFO info;
    memset(&info, 0, sizeof info);
    pthread_mutex_lock(&open_lock);
    SNDFILE *sf = sf_open(path, SFM_READ, &info);
    char openerr[256] = "";
    if (!sf) snprintf(openerr, sizeof openerr, "sf_open: %s", sf_strerror(NULL));
    pthread_mutex_unlock(&open_lock);
    if (!sf) { fail(path, openerr); return; }

    const int in_ch = info.channels, in_rate = info.samplerate;
    if (in_ch < 1 || in_rate < 1) { sf_close(sf); fail(path, "no channels or no sample rate"); return; }
    const int out_ch = in_ch == 2 ? 2 : 1;
    const int out_rate = in_rate <= 16000 ? in_rate : 16000;
    if (!lame_rate_ok(out_rate)) { sf_close(sf); fail(path, "sample rate LAME cannot write"); return; }
    if (ensure(b, in_ch) < 0) { sf_close(sf); fail(path, "out of memory"); return; }

    soxr_t rs = NULL;
    if (out_rate != in_rate) {
        soxr_error_t err = NULL;
        soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
        soxr_quality_spec_t q = soxr_quality_spec(SOXR_HQ, 0);
        soxr_runtime_spec_t rt = soxr_runtime_spec(1);
        rs = soxr_create(in_rate, out_rate, (unsigned)out_ch, &err, &io, &q, &rt);
        if (!rs || err) { sf_close(sf); fail(path, err ? err : "soxr_create failed"); return; }
    }

    lame_t l = lame_init();
    if (!l) { if (rs) soxr_delete(rs); sf_close(sf); fail(path, "lame_init failed"); return; }
    lame_set_errorf(l, quiet);
    lame_set_debugf(l, quiet);
    lame_set_msgf(l, quiet);
    lame_set_num_channels(l, out_ch);
    lame_set_in_samplerate(l, out_rate);
    lame_set_out_samplerate(l, out_rate);
    lame_set_mode(l, out_ch == 2 ? STEREO : MONO);
    lame_set_VBR(l, vbr_off);
    lame_set_brate(l, kbps_per_channel(out_rate) * out_ch);
    lame_set_quality(l, 5);
    lame_set_bWriteVbrTag(l, 1);
    if (lame_init_params(l) < 0) {
        lame_close(l); if (rs) soxr_delete(rs); sf_close(sf); fail(path, "lame_init_params failed"); return;
    }

    /* OUTDIR/<basename without extension>.mp3 */
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    int stem = dot && dot != base ? (int)(dot - base) : (int)strlen(base);
    char out[4096];
    snprintf(out, sizeof out, "%s/%.*s.mp3", outdir, stem, base);
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        char msg[4352]; snprintf(msg, sizeof msg, "%s: %s", out, strerror(errno));
        lame_close(l); if (rs) soxr_delete(rs); sf_close(sf); fail(path, msg); return;
    }

    const char *error = NULL;
    size_t in_frames = 0, out_frames = 0, bytes = 0;
    for (;;) {
        sf_count_t got = sf_readf_float(sf, b->in, BLOCK);
        if (got <= 0) {
            if (sf_error(sf)) error = sf_strerror(sf);
            break;
        }
        size_t n = (size_t)got;
        in_frames += n;
        /* channels: keep 1 or 2; average more to mono. Sanitise every sample. */
        if (out_ch == in_ch) {
            for (size_t i = 0; i < n * (size_t)in_ch; i++) {
                float x = b->in[i];
                b->mixed[i] = !isfinite(x) ? 0.0f : x > 1.0f ? 1.0f : x < -1.0f ? -1.0f : x;
            }
        } else {
            for (size_t f = 0; f < n; f++) {
                float s = 0.0f;
                for (int c = 0; c < in_ch; c++) {
                    float x = b->in[f * (size_t)in_ch + (size_t)c];
                    s += isfinite(x) ? x : 0.0f;
                }
                s /= (float)in_ch;
                b->mixed[f] = s > 1.0f ? 1.0f : s < -1.0f ? -1.0f : s;
            }
        }
        if (rs) {
            size_t done_in = 0;
            while (done_in < n) {
                size_t idone = 0, odone = 0;
                soxr_error_t e = soxr_process(rs, b->mixed + done_in * (size_t)out_ch, n - done_in, &idone,
                                              b->resampled, b->rs_cap, &odone);
                if (e) { error = e; break; }
                done_in += idone;
                if (encode(l, fd, b, b->resampled, odone, out_ch, &bytes) < 0) { error = "lame encode failed"; break; }
                out_frames += odone;
            }
            if (error) break;
        } else {
            if (encode(l, fd, b, b->mixed, n, out_ch, &bytes) < 0) { error = "lame encode failed"; break; }
            out_frames += n;
        }
        if (n < BLOCK) {  /* short read: end of file or an error; check before any other call */
            if (sf_error(sf)) error = sf_strerror(sf);
            break;
        }
    }
    if (!error && rs) {  /* drain the resampler */
        for (;;) {
            size_t odone = 0;
            soxr_error_t e = soxr_process(rs, NULL, 0, NULL, b->resampled, b->rs_cap, &odone);
            if (e) { error = e; break; }
            if (odone == 0) break;
            if (encode(l, fd, b, b->resampled, odone, out_ch, &bytes) < 0) { error = "lame encode failed"; break; }
            out_frames += odone;
        }
    }
    if (!error) {
        int got = lame_encode_flush(l, b->flushbuf, (int)b->mp3_cap);
        if (got < 0) error = "lame_encode_flush failed";
        else if (got > 0 && write(fd, b->flushbuf, (size_t)got) != got) error = "write failed";
        else bytes += (size_t)got;
    }
    if (!error) {
        unsigned char tag[8192];
        size_t n = lame_get_lametag_frame(l, tag, sizeof tag);
        if (n > sizeof tag) error = "LAME tag larger than its buffer";
        else if (n > 0 && pwrite(fd, tag, n, 0) != (ssize_t)n) error = "pwrite of the LAME tag failed";
    }
    if (close(fd) != 0 && !error) error = "close failed";
    lame_close(l);
    if (rs) soxr_delete(rs);
    sf_close(sf);
    if (error) { unlink(out); fail(path, error); return; }
    if (verbose) {
        pthread_mutex_lock(&print_lock);
        printf("%s\t%zu\t%d\t%d\t%zu\t%d\t%d\t%zu\n", path, in_frames, in_rate, in_ch, out_frames, out_rate,
               out_ch, bytes);
        pthread_mutex_unlock(&print_lock);
    }
}

static void *worker(void *arg) {
    (void)arg;
    buffers b;
    memset(&b, 0, sizeof b);
    /* every output rate is <= 16000 and the lowest input rate that resamples is > 16000, so a
       resampled block is at most BLOCK frames; the slack covers soxr's flush */
    b.rs_cap = BLOCK + 4096;
    b.mixed = malloc((size_t)BLOCK * 2 * sizeof(float));
    b.resampled = malloc(b.rs_cap * 2 * sizeof(float));
    b.mp3_cap = (size_t)(1.25 * BLOCK + 7200);
    b.mp3 = malloc(b.mp3_cap);
    b.flushbuf = malloc(b.mp3_cap);
    if (!b.mixed || !b.resampled || !b.mp3 || !b.flushbuf || ensure(&b, 2) < 0) {
        fprintf(stderr, "transcode_ref: out of memory\n");
        exit(1);
    }
    for (;;) {
        size_t i = atomic_fetch_add(&next_file, 1);
        if (i >= nfiles) break;
        transcode(files[i], &b);
    }
    free(b.in); free(b.mixed); free(b.resampled); free(b.mp3); free(b.flushbuf);
    return NULL;
}

static void usage(void) {
    fprintf(stderr, "usage: transcode_ref [-v] -j N -o OUTDIR FILE... | -\n");
    exit(2);
}

int main(int argc, char **argv) {
    int jobs = 1, opt;
    while ((opt = getopt(argc, argv, "j:o:v")) != -1) {
        switch (opt) {
        case 'j': jobs = atoi(optarg); break;
        case 'o': outdir = optarg; break;
        case 'v': verbose = 1; break;
        default: usage();
        }
    }
    if (jobs < 1 || !outdir || optind >= argc) usage();

    size_t cap = 0;
    if (argc - optind == 1 && strcmp(argv[optind], "-") == 0) {
        char *line = NULL;
        size_t lcap = 0;
        ssize_t len;
        while ((len = getline(&line, &lcap, stdin)) > 0) {
            while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
            if (len == 0) continue;
            if (nfiles == cap) {
                cap = cap ? cap * 2 : 256;
                files = realloc(files, cap * sizeof *files);
                if (!files) { perror("realloc"); return 1; }
            }
            files[nfiles++] = strdup(line);
        }
        free(line);
    } else {
        files = argv + optind;
        nfiles = (size_t)(argc - optind);
    }
    if (mkdir(outdir, 0755) != 0 && errno != EEXIST) { perror(outdir); return 1; }

    /* LAME fills a global log table on its first lame_init without a lock: do it once, here. */
    lame_t warm = lame_init();
    if (warm) lame_close(warm);

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 1 << 20);
    pthread_t *t = calloc((size_t)jobs, sizeof *t);
    for (int i = 0; i < jobs; i++) {
        if (pthread_create(&t[i], &attr, worker, NULL) != 0) { perror("pthread_create"); return 1; }
    }
    for (int i = 0; i < jobs; i++) pthread_join(t[i], NULL);
    free(t);
    return atomic_load(&failures) ? 1 : 0;
}
