/*
 * workers.c: `lcgbench sweep --workers N` (CPU cells) and `sweep --device cuda --gpus LIST`
 * (one worker per entry, e.g. 0,1,2,3 or 0,0): the cells of a sweep run side by side, each in
 * a child process, one cell per worker at a time, in grid order as workers come free.
 *
 * A child is this program again (fork + exec), `lcgbench sweep --child <the cell's flags>
 * --threads T`: a sweep of that one cell, so it claims the cell, skips it if it is done or held
 * by another sweep, continues from the cell's checkpoint, and appends its rows through the
 * locked CSV append, exactly as a serial sweep does. A GPU worker's children get
 * CUDA_VISIBLE_DEVICES set to its GPU (an entry of this process's own CUDA_VISIBLE_DEVICES when
 * that is set), so each sees one GPU, as device 0. Each child gets T = the sweep's threads
 * (--threads, else OMP_NUM_THREADS, else the CPUs it may use) divided among the workers.
 *
 * Cells finish out of order; after each finished cell the CSV's rows of the grid are put back
 * in grid order (csv_order_runs), so the finished sweep's CSV is the serial sweep's.
 *
 * Signals: the children run in their own process groups (a terminal's ^C reaches this process
 * only) and SIGINT/SIGTERM are passed on to them: each stops at its step and writes its
 * checkpoint, as a run does, and the same command again continues from there. A child whose
 * parent dies gets SIGTERM (PR_SET_PDEATHSIG). Each cell's start and end are logged
 * ([sweep k/n] lines, seconds since the sweep started; --timeline FILE also as CSV rows with
 * Unix times) and each worker's idle time between its cells is reported at the end.
 *
 * It does not pick GPUs by load or memory, check that a GPU of --gpus exists (its cells fail,
 * each reported), or spread cells over hosts (MPI: mpi.c; job arrays: --shard).
 */
#define _GNU_SOURCE
#include "grid.h"

#include <errno.h>
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* exit statuses of a --child sweep besides 0, 1 and 128 + signal (sweep.c) */
enum { SW_EXIT_ELSEWHERE = 75, SW_EXIT_WRITE = 74 };

typedef struct {
    pid_t pid;
    int cell;
    double t0;          /* its start (lcg_now) */
    double t_end;       /* the end of its last cell, -1 before the first */
    double busy, idle;  /* seconds running cells; waiting between them */
    int cells;
    char **env;         /* a GPU worker's environment (NULL: this process's) */
} worker;

static volatile sig_atomic_t w_sig;
static volatile pid_t w_pid[SW_MAX_WORKERS];

/* first and later signals alike go to every running child (a child's second one kills it) */
static void on_signal(int sig) {
    w_sig = sig;
    for (int w = 0; w < SW_MAX_WORKERS; w++)
        if (w_pid[w] > 0) kill(w_pid[w], sig);
}

int sw_order_rows(const sw_grid *g) {
    uint64_t *ids = LCG_NEW(uint64_t, g->n_cells + 1);
    for (int k = 0; k < g->n_cells; k++) ids[k] = g->cells[k].info.run_id;
    char err[1024];
    int rc = csv_order_runs(g->out, ids, g->n_cells, err, sizeof err);
    lcg_free(ids);
    if (rc < 0) {
        fprintf(stderr, "lcgbench sweep: putting %s in grid order: %s\n", g->out, err);
        return 1;
    }
    return 0;
}

FILE *sw_timeline_open(const sw_grid *g) {
    csv_mkdirs_for(g->timeline);
    FILE *probe = fopen(g->timeline, "r");
    int fresh = !probe;
    if (probe) fclose(probe);
    FILE *tl = fopen(g->timeline, "a");
    if (!tl) {
        fprintf(stderr, "lcgbench sweep: --timeline: cannot write '%s': %s\n", g->timeline, strerror(errno));
        return NULL;
    }
    if (fresh) fprintf(tl, "cell,run_id,worker,gpu,start_unix,end_unix,seconds,status\n");
    fflush(tl);
    return tl;
}

void sw_timeline_row(FILE *tl, const sw_grid *g, int k, int worker, const char *gpu, double start, double end,
                     const char *status) {
    fprintf(tl, "%d,%016llx,%d,%s,%.3f,%.3f,%.3f,%s\n", k + 1, (unsigned long long)g->cells[k].info.run_id, worker,
            gpu, start, end, end - start, status);
    fflush(tl);
}

double sw_unix_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static const char *exe_path(void) {
    static char exe[4096];
    if (!exe[0]) {
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n <= 0) lcg_die("cannot find this program's path: %s", strerror(errno));
        exe[n] = '\0';
    }
    return exe;
}

/* `exe sweep --child <cell flags> --threads T`, malloc'd, NULL-terminated */
static char **child_argv(const sw_cell *c, const char *exe, char *threads) {
    char **a = LCG_NEW(char *, c->argc + 8);
    int n = 0;
    a[n++] = (char *)exe;
    a[n++] = "sweep";
    a[n++] = "--child";
    for (int i = 0; i < c->argc; i++) a[n++] = c->argv[i];
    a[n++] = "--threads";
    a[n++] = threads;
    a[n] = NULL;
    return a;
}

static void child_start(worker *W, int w, const sw_grid *g, int k, char *threads) {
    const char *exe = exe_path();
    char **argv = child_argv(&g->cells[k], exe, threads);
    char **env = W->env ? W->env : environ;
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) lcg_die("cannot start a worker: fork: %s", strerror(errno));
    if (pid == 0) { /* async-signal-safe calls only until exec */
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent) _exit(128 + SIGTERM);
        execve(exe, argv, env);
        _exit(127);
    }
    lcg_free(argv);
    W->pid = pid;
    w_pid[w] = pid;
    if (w_sig) kill(pid, w_sig); /* a signal that came before the child was known */
    W->cell = k;
    W->t0 = lcg_now();
    if (W->t_end >= 0) W->idle += W->t0 - W->t_end;
}

static void describe(int st, char *out, size_t n) {
    if (WIFSIGNALED(st)) snprintf(out, n, "killed by signal %d%s", WTERMSIG(st), WTERMSIG(st) == SIGKILL ? ", out of memory?" : "");
    else if (WIFEXITED(st) && WEXITSTATUS(st) == 127) snprintf(out, n, "could not start '%.*s'", (int)(n > 20 ? n - 20 : 0), exe_path());
    else snprintf(out, n, "exit status %d", WIFEXITED(st) ? WEXITSTATUS(st) : st);
}

int sweep_workers(sw_grid *g, int claims, double t0) {
#ifdef LCG_FUZZ
    (void)g, (void)claims, (void)t0;
    return 0; /* the fuzzer stops at validation: no child processes */
#endif
    int n_w = g->workers, total = omp_get_max_threads(), per = total / n_w > 0 ? total / n_w : 1;
    char threads[16];
    snprintf(threads, sizeof threads, "%d", per);
    worker W[SW_MAX_WORKERS];
    char names[SW_MAX_WORKERS][48], list[SW_MAX_WORKERS * 34] = "";
    size_t off = 0;
    for (int w = 0; w < n_w; w++) {
        W[w] = (worker){.pid = -1, .t_end = -1, .env = g->gpus_set ? sw_child_env(g->gpu[w]) : NULL};
        w_pid[w] = -1;
        if (g->gpus_set) snprintf(names[w], sizeof names[w], "gpu %s", g->gpu[w]);
        else snprintf(names[w], sizeof names[w], "worker %d", w);
        if (g->gpus_set) off += (size_t)snprintf(list + off, sizeof list - off, "%s%s", w ? "," : "", g->gpu[w]);
    }
    if (g->gpus_set)
        fprintf(stderr, "lcgbench sweep: %d workers on GPUs %s (CUDA_VISIBLE_DEVICES per worker), %d thread%s each\n", n_w,
                list, per, per == 1 ? "" : "s");
    else
        fprintf(stderr, "lcgbench sweep: %d workers, %d thread%s each\n", n_w, per, per == 1 ? "" : "s");
    FILE *tl = NULL;
    if (g->timeline && !(tl = sw_timeline_open(g))) {
        for (int w = 0; w < n_w; w++) sw_child_env_free(W[w].env);
        return 1;
    }
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    w_sig = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    double u0 = sw_unix_now() - (lcg_now() - t0); /* the sweep's start as a Unix time */

    int next = 0, running = 0, ran = 0, failed = 0, elsewhere = 0, stop = 0, stopped = 0;
    for (;;) {
        for (int w = 0; w < n_w && !w_sig && !stop; w++) {
            if (W[w].pid > 0) continue;
            int k = -1;
            while (next < g->n_cells && k < 0) {
                int c = next++;
                if (g->cells[c].done || !g->cells[c].mine) continue;
                int got = lcg_claim(claims, g->cells[c].info.run_id); /* held by another sweep: skip it */
                if (got < 0) lcg_die("cannot claim cell %d in '%s.lock': %s", c + 1, g->out, strerror(errno));
                if (got == 0) {
                    elsewhere++;
                    continue;
                }
                lcg_unclaim(claims, g->cells[c].info.run_id); /* the child claims it */
                k = c;
            }
            if (k < 0) break;
            child_start(&W[w], w, g, k, threads);
            running++;
            fprintf(stderr, "[sweep %d/%d] %s: %s, start +%.1f s\n", k + 1, g->n_cells, g->cells[k].desc, names[w],
                    W[w].t0 - t0);
        }
        if (!running) break;
        int st;
        pid_t pid = waitpid(-1, &st, 0);
        if (pid < 0) {
            if (errno == EINTR) continue;
            lcg_die("waitpid: %s", strerror(errno));
        }
        int w = 0;
        while (w < n_w && W[w].pid != pid) w++;
        if (w == n_w) continue; /* not a worker's */
        double t1 = lcg_now();
        int k = W[w].cell;
        W[w].pid = -1;
        w_pid[w] = -1;
        W[w].busy += t1 - W[w].t0;
        W[w].t_end = t1;
        W[w].cells++;
        running--;
        const sw_cell *c = &g->cells[k];
        int code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        const char *status = "done";
        if (code == 0) {
            ran++;
            if (sw_order_rows(g) != 0) stop = 1, failed++;
            fprintf(stderr, "[sweep %d/%d] %s: done on %s in %.1f s (+%.1f to +%.1f s)\n", k + 1, g->n_cells, c->desc,
                    names[w], t1 - W[w].t0, W[w].t0 - t0, t1 - t0);
        } else if (code == SW_EXIT_ELSEWHERE) {
            elsewhere++;
            status = "elsewhere";
        } else if (w_sig && (code == 128 + SIGINT || code == 128 + SIGTERM || WIFSIGNALED(st))) {
            stopped++;
            status = "stopped";
            fprintf(stderr, "[sweep %d/%d] %s: stopped on %s after %.1f s\n", k + 1, g->n_cells, c->desc, names[w],
                    t1 - W[w].t0);
        } else {
            char why[160];
            describe(st, why, sizeof why);
            fprintf(stderr, "lcgbench sweep: cell %d (%s) failed on %s (%s)\n", k + 1, c->desc, names[w], why);
            failed++;
            status = "failed";
            if (code == SW_EXIT_WRITE) { /* every later cell would train only to fail the same way */
                fprintf(stderr, "lcgbench sweep: stopping: %s could not be written; fix that and run the same command "
                                "again\n", g->out);
                stop = 1;
            }
        }
        if (tl) sw_timeline_row(tl, g, k, w, g->gpus_set ? g->gpu[w] : "", u0 + (W[w].t0 - t0), u0 + (t1 - t0), status);
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    double t_all = lcg_now() - t0;
    for (int w = 0; w < n_w; w++) {
        if (W[w].cells)
            fprintf(stderr, "lcgbench sweep: %s: %d cell%s, busy %.2f s, idle %.3f s between cells\n", names[w],
                    W[w].cells, W[w].cells == 1 ? "" : "s", W[w].busy, W[w].idle);
        sw_child_env_free(W[w].env);
    }
    if (tl && fclose(tl) != 0) fprintf(stderr, "lcgbench sweep: --timeline: writing '%s' failed\n", g->timeline);
    if (w_sig) {
        fprintf(stderr, "lcgbench sweep: stopped (%d cell%s cut short, each kept its checkpoint); run the same command "
                        "again to continue\n", stopped, stopped == 1 ? "" : "s");
        return 128 + w_sig;
    }
    fprintf(stderr, "lcgbench sweep: ran %d cells on %d workers in %.1f s%s\n", ran + failed, n_w, t_all,
            failed ? "; some failed: run the same command again to retry them" : "");
    if (elsewhere)
        fprintf(stderr, "lcgbench sweep: %d cell%s left to another sweep running on %s\n", elsewhere,
                elsewhere == 1 ? " was" : "s were", g->out);
    return failed ? 1 : 0;
}
