/*
 * util.c: see util.h. Allocation, checked I/O, atomic file replacement, timing, FNV-1a and
 * PCG32. Nothing here allocates behind the caller's back or keeps global state (the test
 * stop point reads its environment variable on every call).
 */
#define _GNU_SOURCE /* flock, F_OFD_SETLK */
#include "util.h"

#include <limits.h>
#include <sys/file.h>

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

void lcg_remove_stale_temps(const char *path_in) {
    char dir[4096], path[4096], err[64];
    if (lcg_out_target(path_in, path, sizeof path, err, sizeof err) != 0) return; /* temps sit by the target */
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

int lcg_out_target(const char *path, char *target, size_t n, char *err, size_t err_len) {
    struct stat st;
    if (!*path) {
        snprintf(err, err_len, "empty output path");
        return -1;
    }
    if (lstat(path, &st) != 0) {
        if (errno != ENOENT) {
            snprintf(err, err_len, "cannot use '%s': %s", path, strerror(errno));
            return -1;
        }
        if (snprintf(target, n, "%s", path) >= (int)n) goto too_long;
        return 0; /* a new file */
    }
    const char *what = path;
    char real[PATH_MAX];
    if (S_ISLNK(st.st_mode)) {
        if (stat(path, &st) != 0) {
            snprintf(err, err_len, "'%s' is a symbolic link to a missing file; give the target's path", path);
            return -1;
        }
        if (!realpath(path, real)) {
            snprintf(err, err_len, "cannot resolve '%s': %s", path, strerror(errno));
            return -1;
        }
        what = real;
    }
    if (!S_ISREG(st.st_mode)) {
        const char *kind = S_ISDIR(st.st_mode) ? "a directory" : S_ISFIFO(st.st_mode) ? "a FIFO"
                         : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device" : S_ISSOCK(st.st_mode) ? "a socket"
                         : "not a regular file";
        if (what == path) snprintf(err, err_len, "'%s' is %s: results go to regular files only", path, kind);
        else snprintf(err, err_len, "'%s' links to '%s', which is %s: results go to regular files only", path, what, kind);
        return -1;
    }
    if (snprintf(target, n, "%s", what) >= (int)n) goto too_long;
    return 0;
too_long:
    snprintf(err, err_len, "path too long: '%s'", path);
    return -1;
}

int lcg_write_file_atomic(const char *path_in, const void *data, size_t n, char *err, size_t err_len) {
    char tmp[4096], path[4096];
    if (lcg_out_target(path_in, path, sizeof path, err, err_len) != 0) return -1;
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

int lcg_check_writable(const char *path_in, char *err, size_t err_len) {
    char tmp[4096], path[4096];
    if (lcg_out_target(path_in, path, sizeof path, err, err_len) != 0) return -1;
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp) {
        snprintf(err, err_len, "path too long: '%s'", path);
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

int lcg_is_stdout(const char *path) { return path && (strcmp(path, "-") == 0 || strcmp(path, "/dev/stdout") == 0); }

int lcg_same_file(const char *a, const char *b) {
    char ta[4096], tb[4096], err[64];
    if (lcg_out_target(a, ta, sizeof ta, err, sizeof err) != 0) snprintf(ta, sizeof ta, "%s", a);
    if (lcg_out_target(b, tb, sizeof tb, err, sizeof err) != 0) snprintf(tb, sizeof tb, "%s", b);
    struct stat sa, sb;
    if (stat(ta, &sa) == 0 && stat(tb, &sb) == 0) return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    char ra[PATH_MAX], rb[PATH_MAX]; /* not both there yet: compare where they would be */
    const char *pa = realpath(ta, ra) ? ra : ta, *pb = realpath(tb, rb) ? rb : tb;
    return strcmp(pa, pb) == 0;
}

/* opens target.lock (created if missing) for path's resolved target */
static int lock_file_open(const char *path, char *err, size_t err_len) {
    char target[4096], lock[4200];
    if (lcg_out_target(path, target, sizeof target, err, err_len) != 0) return -1;
    snprintf(lock, sizeof lock, "%s.lock", target);
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) snprintf(err, err_len, "cannot open the lock file '%s': %s", lock, strerror(errno));
    return fd;
}

int lcg_file_lock(const char *path, char *err, size_t err_len) {
    int fd = lock_file_open(path, err, err_len);
    if (fd < 0) return -1;
    while (flock(fd, LOCK_EX) != 0) {
        if (errno == EINTR) continue;
        snprintf(err, err_len, "cannot lock '%s.lock': %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

void lcg_file_unlock(int fd) {
    if (fd >= 0) close(fd); /* closing the descriptor releases the flock */
}

int lcg_update_file(const char *path, lcg_update_fn update, void *ctx, char *err, size_t err_len) {
    char target[4096];
    if (lcg_out_target(path, target, sizeof target, err, err_len) != 0) return -1;
    int lk = lcg_file_lock(target, err, err_len);
    if (lk < 0) return -1;
    int rc = -1;
    size_t n_old = 0, n_new = 0;
    char *old = lcg_read_file(target, &n_old), *out = NULL;
    if (!old && errno != ENOENT) snprintf(err, err_len, "cannot read '%s': %s", path, strerror(errno));
    else if (update(ctx, old, old ? n_old : 0, &out, &n_new, err, err_len) == 0)
        rc = lcg_write_file_atomic(target, out, n_new, err, err_len);
    free(old);
    free(out);
    lcg_file_unlock(lk);
    return rc;
}

int lcg_claim_open(const char *path, char *err, size_t err_len) { return lock_file_open(path, err, err_len); }

/* byte 1 + key / 4 (below 2^62) of the lock file: open-file-description locks, so other
 * descriptors this process opens and closes on the same file (its own appends) leave it alone */
static int claim_lock(int fd, uint64_t key, short type) {
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = (off_t)(1 + (key >> 2)), .l_len = 1};
    return fcntl(fd, F_OFD_SETLK, &fl);
}

int lcg_claim(int fd, uint64_t key) {
    if (claim_lock(fd, key, F_WRLCK) == 0) return 1;
    return errno == EAGAIN || errno == EACCES ? 0 : -1;
}

void lcg_unclaim(int fd, uint64_t key) { (void)claim_lock(fd, key, F_UNLCK); }

void lcg_claim_close(int fd) {
    if (fd >= 0) close(fd);
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
