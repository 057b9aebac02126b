/*
 * util.c: see util.h. Allocation, checked I/O, atomic file replacement, timing, FNV-1a and
 * PCG32. Nothing here allocates behind the caller's back or keeps global state (the test
 * stop point reads its environment variable on every call).
 */
#define _POSIX_C_SOURCE 200809L
#include "util.h"

#include <dirent.h>
#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

_Noreturn void lcg_die_at(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "lcgbench: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " [%s:%d]\n", file, line);
    va_end(ap);
    exit(1);
}

void *lcg_alloc_uninit_at(size_t n_bytes, const char *file, int line) {
    void *p = NULL;
    size_t n = n_bytes ? (n_bytes + 63) / 64 * 64 : 64;
    if (posix_memalign(&p, 64, n) != 0 || p == NULL)
        lcg_die_at(file, line, "out of memory allocating %zu bytes", n_bytes);
    return p;
}

void *lcg_alloc_at(size_t n_bytes, const char *file, int line) {
    void *p = lcg_alloc_uninit_at(n_bytes, file, line);
    memset(p, 0, n_bytes ? (n_bytes + 63) / 64 * 64 : 64);
    return p;
}

void lcg_free(void *p) { free(p); }

FILE *lcg_fopen_at(const char *path, const char *mode, const char *file, int line) {
    FILE *f = fopen(path, mode);
    if (!f) lcg_die_at(file, line, "cannot open '%s': %s", path, strerror(errno));
    return f;
}

void lcg_fwrite_at(const void *p, size_t size, size_t n, FILE *f, const char *path,
                   const char *file, int line) {
    if (n && fwrite(p, size, n, f) != n)
        lcg_die_at(file, line, "cannot write '%s': %s", path, strerror(errno));
}

int lcg_fclose_sync(FILE *f) {
    int rc = 0;
    if (fflush(f) != 0) rc = -1;
    if (rc == 0 && fsync(fileno(f)) != 0 && errno != EINVAL) rc = -1;
    int saved = errno;
    if (fclose(f) != 0 && rc == 0) return -1;
    errno = saved;
    return rc;
}

/* the directory part of path ("." if none) */
static void dir_of(const char *path, char *dir, size_t n) {
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(dir, n, ".");
    else if (slash == path) snprintf(dir, n, "/");
    else snprintf(dir, n, "%.*s", (int)(slash - path), path);
}

int lcg_fsync_dir_of(const char *path) {
    char dir[4096];
    dir_of(path, dir, sizeof dir);
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return -1;
    int rc = fsync(fd) != 0 && errno != EINVAL ? -1 : 0;
    close(fd);
    return rc;
}

void lcg_remove_stale_temps(const char *path) {
    char dir[4096];
    dir_of(path, dir, sizeof dir);
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    size_t bl = strlen(base);
    DIR *d = opendir(dir);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        const char *n = e->d_name;
        if (strncmp(n, base, bl) != 0 || strncmp(n + bl, ".tmp.", 5) != 0) continue;
        char *end;
        long pid = strtol(n + bl + 5, &end, 10);
        if (end == n + bl + 5 || *end || pid <= 0 || pid == (long)getpid()) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue; /* its writer may be alive */
        char full[8192];
        snprintf(full, sizeof full, "%s/%s", dir, n);
        remove(full);
    }
    closedir(d);
}

void lcg_test_stop_point(const char *point, const char *detail) {
    const char *want = getenv("LCG_TEST_STOP_AT");
    if (!want || !*want) return;
    size_t pl = strlen(point);
    if (strncmp(want, point, pl) != 0) return;
    if (!(want[pl] == '\0' || (detail && want[pl] == ':' && strcmp(want + pl + 1, detail) == 0))) return;
    raise(SIGSTOP);
    /* a SIGINT/SIGTERM sent while the process was stopped may be taken after SIGCONT by any of
     * its threads (an OpenMP worker asleep at a barrier, late): wait until it is handled (at
     * most a second) so the process acts on it at this point, as the tests expect */
    int seen = 0;
    for (int i = 0; i < 1000; i++) {
        sigset_t p;
        if (sigpending(&p) != 0 || !(sigismember(&p, SIGINT) || sigismember(&p, SIGTERM))) break;
        seen = 1;
        nanosleep(&(struct timespec){0, 1000000L}, NULL);
    }
    if (seen) nanosleep(&(struct timespec){0, 10000000L}, NULL); /* its handler, on that thread */
}

int lcg_write_file_atomic(const char *path, const void *data, size_t n, char *err, size_t err_len) {
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp) {
        snprintf(err, err_len, "path too long: '%s'", path);
        return -1;
    }
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        snprintf(err, err_len, "cannot write '%s': %s", tmp, strerror(errno));
        return -1;
    }
    if ((n && fwrite(data, 1, n, f) != n) || lcg_fclose_sync(f) != 0) {
        snprintf(err, err_len, "cannot write '%s': %s", tmp, strerror(errno));
        remove(tmp);
        return -1;
    }
    lcg_test_stop_point("rename", path); /* tests kill the process here */
    if (rename(tmp, path) != 0) {
        snprintf(err, err_len, "cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
        remove(tmp);
        return -1;
    }
    /* the rename itself must survive a power cut too */
    if (lcg_fsync_dir_of(path) != 0) {
        snprintf(err, err_len, "cannot sync the directory of '%s': %s", path, strerror(errno));
        return -1;
    }
    lcg_test_stop_point("renamed", path);
    return 0;
}

int lcg_check_writable(const char *path, char *err, size_t err_len) {
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp) {
        snprintf(err, err_len, "path too long: '%s'", path);
        return -1;
    }
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(err, err_len, "cannot write '%s': it is a directory", path);
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0666);
    if (fd < 0) {
        snprintf(err, err_len, "cannot write '%s': %s", path, strerror(errno));
        return -1;
    }
    close(fd);
    remove(tmp);
    return 0;
}

char *lcg_read_file(const char *path, size_t *n_out) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) { /* fopen accepts a directory */
        fclose(f);
        errno = EISDIR;
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf) lcg_die("out of memory reading '%s'", path);
    for (;;) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap) break;
        cap *= 2;
        char *nb = realloc(buf, cap + 1);
        if (!nb) lcg_die("out of memory reading '%s'", path);
        buf = nb;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        errno = EIO;
        return NULL;
    }
    buf[n] = '\0';
    if (n_out) *n_out = n;
    return buf;
}

double lcg_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

uint64_t lcg_fnv1a(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* ---- PCG32 ---------------------------------------------------------------------------------
 * state' = state * 6364136223846793005 + inc; output = rotr32(((s >> 18) ^ s) >> 27, s >> 59)
 * computed from the old state. Seeding follows the reference pcg32_srandom_r so the published
 * demo sequence (seed 42, stream 54) is reproduced exactly (tests/test_kernels.c). */
uint32_t pcg32_next(pcg32 *rng) {
    uint64_t old = rng->state;
    rng->state = old * 6364136223846793005ULL + rng->inc;
    uint32_t xorshifted = (uint32_t)(((old >> 18u) ^ old) >> 27u);
    uint32_t rot = (uint32_t)(old >> 59u);
    return (xorshifted >> rot) | (xorshifted << ((-rot) & 31u));
}

void pcg32_seed(pcg32 *rng, uint64_t initstate, uint64_t initseq) {
    rng->state = 0u;
    rng->inc = (initseq << 1u) | 1u;
    pcg32_next(rng);
    rng->state += initstate;
    pcg32_next(rng);
}

uint32_t pcg32_below(pcg32 *rng, uint32_t bound) {
    uint32_t threshold = (uint32_t)(-bound) % bound;
    for (;;) {
        uint32_t r = pcg32_next(rng);
        if (r >= threshold) return r % bound;
    }
}

float pcg32_float(pcg32 *rng) { return (float)(pcg32_next(rng) >> 8) * (1.0f / 16777216.0f); }

double pcg32_normal(pcg32 *rng) {
    /* u1 in (0, 1], u2 in [0, 1) */
    double u1 = ((double)pcg32_next(rng) + 1.0) / 4294967296.0;
    double u2 = (double)pcg32_next(rng) / 4294967296.0;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

pcg32 pcg32_derive(uint64_t seed, const char *purpose, uint64_t index) {
    uint64_t h = lcg_fnv1a(LCG_FNV_INIT, purpose, strlen(purpose));
    h = lcg_fnv1a(h, &index, sizeof index);
    pcg32 rng;
    pcg32_seed(&rng, seed, h);
    return rng;
}
