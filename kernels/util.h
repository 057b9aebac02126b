/*
 * util.h: checked allocation and I/O helpers shared by every layer, plus the
 * PCG32 generator that all randomness flows from.
 *
 * Every helper that can fail names the caller's file and line and exits with
 * status 1: a failed allocation or a short write is never silently ignored.
 * This file deliberately holds no math and no policy (no CLI, no CSV).
 */
#ifndef LCG_UTIL_H
#define LCG_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- fatal errors ---------------------------------------------------------------------- */
_Noreturn void lcg_die_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define lcg_die(...) lcg_die_at(__FILE__, __LINE__, __VA_ARGS__)

/* ---- allocation: 64-byte aligned, zeroed, fatal on failure ----------------------------- */
void *lcg_alloc_at(size_t n_bytes, const char *file, int line);
#define lcg_alloc(n_bytes) lcg_alloc_at((n_bytes), __FILE__, __LINE__)
#define LCG_NEW(type, count) ((type *)lcg_alloc(sizeof(type) * (size_t)(count)))
/* the same, not zeroed: for scratch the caller overwrites whole (hot paths) */
void *lcg_alloc_uninit_at(size_t n_bytes, const char *file, int line);
#define LCG_SCRATCH(type, count) ((type *)lcg_alloc_uninit_at(sizeof(type) * (size_t)(count), __FILE__, __LINE__))
void lcg_free(void *p);

/* ---- file I/O: fatal on failure, naming the path --------------------------------------- */
FILE *lcg_fopen_at(const char *path, const char *mode, const char *file, int line);
void lcg_fwrite_at(const void *p, size_t size, size_t n, FILE *f, const char *path,
                   const char *file, int line);
#define lcg_fopen(path, mode) lcg_fopen_at((path), (mode), __FILE__, __LINE__)
#define lcg_fwrite(p, size, n, f, path) lcg_fwrite_at((p), (size), (n), (f), (path), __FILE__, __LINE__)
/* fflush + fsync + fclose; returns 0 or -1 with errno set (callers report the path). */
int lcg_fclose_sync(FILE *f);
/* The file a write to `path` must replace: `path` itself when it does not exist or is a regular
 * file; a symlink's final target when that is a regular file (so the link survives and its
 * target is updated). Anything else (a directory, device, FIFO, socket, a dangling link) is
 * refused with a message: results go to regular files only. 0 or -1. */
int lcg_out_target(const char *path, char *target, size_t n, char *err, size_t err_len);
/* Atomically replace `path` (through lcg_out_target) with `n` bytes: write `target.tmp.<pid>`,
 * fsync, rename, fsync the directory. Returns 0, or -1 with a message in err[err_len]. */
int lcg_write_file_atomic(const char *path, const void *data, size_t n, char *err, size_t err_len);
/* whether an output path asks for standard output ("-" or /dev/stdout): the commands whose
 * output is a report (table, merge) write there instead of replacing a file */
int lcg_is_stdout(const char *path);
/* whether two output paths name the same file (after lcg_out_target; by device and inode when
 * both exist); an unresolvable path compares by its text */
int lcg_same_file(const char *a, const char *b);
/* An exclusive advisory lock (flock) on `target.lock`, beside the file `path` resolves to;
 * blocks while another process holds it. Returns its descriptor (for lcg_file_unlock), or -1
 * with a message. The lock file stays: removing it could let two writers hold "the" lock. */
int lcg_file_lock(const char *path, char *err, size_t err_len);
void lcg_file_unlock(int fd);
/* The read-modify-write of a file that several processes update (a results CSV): under its
 * lock, reads it (old = NULL, n_old = 0 if it does not exist), calls update to build the new
 * contents in *out (malloc'd; the callee reports problems in err and returns -1), and
 * replaces the file atomically. So concurrent writers each land their change exactly once. */
typedef int (*lcg_update_fn)(void *ctx, const char *old, size_t n_old, char **out, size_t *n_out,
                             char *err, size_t err_len);
int lcg_update_file(const char *path, lcg_update_fn update, void *ctx, char *err, size_t err_len);
/* Claims of work items between processes sharing one lock file (fd from lcg_file_lock's
 * file, opened separately with lcg_claim_open): a non-blocking lock on one byte per key,
 * released when the claiming process ends (or lcg_claim_close). 1: claimed, 0: another
 * process holds it, -1: error. */
int lcg_claim_open(const char *path, char *err, size_t err_len);
int lcg_claim(int fd, uint64_t key);
void lcg_unclaim(int fd, uint64_t key);
void lcg_claim_close(int fd);
/* whether `path` can be written by lcg_write_file_atomic (creates and removes its temp file,
 * so nothing is trained for output that cannot be kept); 0 or -1 with a message */
int lcg_check_writable(const char *path, char *err, size_t err_len);
/* removes `path.tmp.<pid>` files left by writers that no longer run (a killed process) */
void lcg_remove_stale_temps(const char *path);
/* fsync of the directory holding path; 0 or -1 with errno set */
int lcg_fsync_dir_of(const char *path);
/* Test hook: when the environment variable LCG_TEST_STOP_AT is `point` or `point:detail`, the
 * process stops itself (SIGSTOP) here, so a test can kill it at exactly this moment. Points:
 * "rename" (detail: the path; a temp file written, not yet renamed), "renamed" (the same,
 * just after the rename), "step" (detail: the
 * 1-based step just finished), "eval" (detail: the length about to be evaluated), "prefill"
 * (detail: the 0-based layer a CPU prefill has just finished). */
void lcg_test_stop_point(const char *point, const char *detail);
/* Read a whole file; returns NULL (errno set) if it cannot be opened or read. */
char *lcg_read_file(const char *path, size_t *n_out);

/* ---- timing ----------------------------------------------------------------------------- */
double lcg_now(void); /* monotonic seconds */

/* ---- hashing ---------------------------------------------------------------------------- */
uint64_t lcg_fnv1a(uint64_t h, const void *data, size_t n);
#define LCG_FNV_INIT 0xcbf29ce484222325ULL

/* ---- PCG32 (O'Neill 2014, XSH-RR 64/32), our own implementation ------------------------ */
typedef struct {
    uint64_t state;
    uint64_t inc; /* stream selector, always odd */
} pcg32;

void pcg32_seed(pcg32 *rng, uint64_t initstate, uint64_t initseq);
uint32_t pcg32_next(pcg32 *rng);
/* uniform in [0, bound), unbiased (rejection of the low remainder, as pcg_basic does) */
uint32_t pcg32_below(pcg32 *rng, uint32_t bound);
/* uniform in [0, 1) with 24 random bits */
float pcg32_float(pcg32 *rng);
/* standard normal (Box-Muller on two 32-bit draws; deterministic, no cached spare) */
double pcg32_normal(pcg32 *rng);
/* an independent generator for a named purpose: same seed, distinct stream */
pcg32 pcg32_derive(uint64_t seed, const char *purpose, uint64_t index);

#endif
