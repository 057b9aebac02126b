/*
 * mpi.c: the MPI sweep of lcgbench-mpi (`make MPI=1`; the default build has no MPI):
 * `mpirun -np N lcgbench-mpi sweep ...` spreads the grid's cells over the ranks.
 *
 * Every rank parses and checks the same grid (sweep.c). Rank 0 coordinates: it finds the
 * cells already in the output CSV (resume) and hands out the others one at a time, in grid
 * order, to whichever rank asks next (dynamic load balancing: cells differ a lot in cost).
 * Every rank, rank 0 included, runs its cells one after the other, each as a child process
 * (`lcgbench-mpi run <the cell's flags> --out <a private temp CSV>`, spawned, never forked
 * with MPI state), and sends the rows it wrote to rank 0 when it asks for the next cell.
 * Only rank 0 writes the output CSV: after every finished cell it rewrites it atomically, under
 * the CSV's lock, as the rows it held at the start followed by every finished cell's rows in
 * grid order (and after them any rows other writers appended meanwhile), so the
 * file is always whole, holds every finished cell if the job dies, and ends up byte for byte
 * the file a serial sweep writes (less the wall_* columns). A cell whose run fails (exit
 * status, signal, out of memory) is reported with its rank and the others go on; the same
 * command again runs only what is missing.
 *
 * Threads: unless --threads or OMP_NUM_THREADS says, each rank gives its runs its share of
 * the CPUs it may run on: each CPU of its affinity mask counts 1/k when k ranks of the node
 * may use it (ranks bound to their own cores get all of theirs; unbound ranks split them).
 *
 * GPUs: when the cells run on cuda, each rank's runs see one GPU: the one of its rank on the
 * node (its local rank) modulo the GPUs it may use (--gpus LIST, else this process's
 * CUDA_VISIBLE_DEVICES, else the GPUs the driver lists), through CUDA_VISIBLE_DEVICES in the
 * child's environment; rank 0's [sweep k/n] lines name each rank's GPU.
 *
 * It does not survive the death of a rank itself (MPI aborts the job; rerun to resume), and
 * it does not need a shared file system: rows travel by MPI, temp files stay node-local.
 */
#define _GNU_SOURCE
#include "grid.h"

#include <errno.h>
#include <mpi.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

enum { TAG_ASK = 1, TAG_CELL = 2 };

/* ---- the local share of CPUs ------------------------------------------------------------- */
static int local_threads(int *local_rank) {
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    int n_local;
    MPI_Comm_size(node, &n_local);
    MPI_Comm_rank(node, local_rank);
    cpu_set_t mine;
    CPU_ZERO(&mine);
    if (sched_getaffinity(0, sizeof mine, &mine) != 0) CPU_SET(0, &mine);
    cpu_set_t *all = LCG_NEW(cpu_set_t, n_local);
    MPI_Allgather(&mine, (int)sizeof mine, MPI_BYTE, all, (int)sizeof mine, MPI_BYTE, node);
    double share = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (!CPU_ISSET(cpu, &mine)) continue;
        int users = 0;
        for (int r = 0; r < n_local; r++) users += CPU_ISSET(cpu, &all[r]) ? 1 : 0;
        share += 1.0 / (users ? users : 1);
    }
    lcg_free(all);
    MPI_Comm_free(&node);
    int t = (int)(share + 1e-9);
    return t < 1 ? 1 : t;
}

/* ---- one cell in a child process ---------------------------------------------------------- */
typedef struct {
    pid_t pid;
    int cell;
    double t0;
    char tmp[4200];
} child;

static volatile pid_t g_child = -1;
static char **g_env;                /* the runs' environment: environ, or with this rank's GPU */
static char (*g_rank_gpu)[32];      /* rank 0: each rank's GPU ("" without) */

/* a rank stopped by the launcher (scancel, Ctrl-C on mpirun) takes its run with it */
static void on_signal(int sig) {
    if (g_child > 0) kill(g_child, SIGTERM);
    signal(sig, SIG_DFL);
    raise(sig);
}

static void child_start(child *ch, const sw_grid *g, int k, int threads, int rank) {
    static char exe[4096];
    if (!exe[0]) {
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n <= 0) lcg_die("cannot find this program's path: %s", strerror(errno));
        exe[n] = '\0';
    }
    const char *dir = getenv("TMPDIR");
    snprintf(ch->tmp, sizeof ch->tmp, "%s/lcgbench-sweep.%d.r%d.c%d.csv", dir && *dir ? dir : "/tmp", (int)getpid(),
             rank, k);
    remove(ch->tmp);
    char tbuf[16];
    char **argv = sw_child_argv(&g->cells[k], exe, ch->tmp, threads, tbuf);
    pid_t pid;
    int e = posix_spawn(&pid, exe, NULL, NULL, argv, g_env ? g_env : environ);
    lcg_free(argv);
    if (e != 0) lcg_die("cannot start '%s run': %s", exe, strerror(e));
    ch->pid = g_child = pid;
    ch->cell = k;
    ch->t0 = lcg_now();
}

/* after the child exited with wait status st: 0 and its rows (the temp CSV less its header,
 * malloc'd), or the failure, rows NULL: a nonzero wait status, or -1 when it wrote no rows */
static int child_finish(child *ch, int st, char **rows, size_t *n) {
    *rows = NULL;
    *n = 0;
    ch->pid = g_child = -1;
    int ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
    size_t len = 0;
    char *text = ok ? lcg_read_file(ch->tmp, &len) : NULL;
    remove(ch->tmp);
    char *nl = text ? memchr(text, '\n', len) : NULL;
    if (!nl || (size_t)(nl + 1 - text) == len) { /* no header, or no rows */
        free(text);
        return ok ? -1 : st;
    }
    *n = len - (size_t)(nl + 1 - text);
    *rows = malloc(*n);
    if (!*rows) lcg_die("out of memory");
    memcpy(*rows, nl + 1, *n);
    free(text);
    return 0;
}

static void describe_status(int st, char *out, size_t n) {
    if (st == -1) snprintf(out, n, "it wrote no rows");
    else if (WIFSIGNALED(st)) snprintf(out, n, "killed by signal %d%s", WTERMSIG(st), WTERMSIG(st) == SIGKILL ? ", out of memory?" : "");
    else if (WIFEXITED(st) && WEXITSTATUS(st)) snprintf(out, n, "exit status %d", WEXITSTATUS(st));
    else snprintf(out, n, "wait status %d", st);
}

/* ---- rank 0 ------------------------------------------------------------------------------- */
typedef struct {
    const sw_grid *g;
    char *old;          /* the output CSV as it was at the start (NULL: none) */
    size_t n_old;
    char *prefix;       /* what this rank last wrote: old + finished cells in grid order */
    size_t n_prefix;
    int ordered, last;  /* prefix still heads the file; the cell just finished */
    char **rows;        /* per cell: its finished rows */
    size_t *n_rows;
    int failed, finished;
} coord;

/* The file under its lock: what it held at the start, then every finished cell's rows in grid
 * order (C->prefix, the part this rank wrote last time), then whatever other writers appended
 * since (a run or another sweep on the same CSV; kept after ours). If someone rewrote the part
 * we wrote, the cell's rows are appended at the end instead: out of order, never lost. */
static int merge_rows(void *ctx, const char *cur, size_t n_cur, char **out, size_t *n_out, char *err,
                      size_t err_len) {
    (void)err, (void)err_len;
    coord *C = ctx;
    const sw_grid *g = C->g;
    char *up = NULL;
    size_t n_up = 0;
    if (csv_upgrade(cur, n_cur, &up, &n_up)) cur = up, n_cur = n_up; /* schema 1: upgraded in place */
    FILE *f = open_memstream(out, n_out);
    if (!f) lcg_die("open_memstream failed");
    if (C->ordered && n_cur >= C->n_prefix && memcmp(cur, C->prefix, C->n_prefix) == 0) {
        char *p = NULL;
        size_t n_p = 0;
        FILE *pf = open_memstream(&p, &n_p);
        if (!pf) lcg_die("open_memstream failed");
        if (C->old && C->n_old) fwrite(C->old, 1, C->n_old, pf);
        else csv_write_record(pf, lcg_csv_columns, lcg_csv_n_columns);
        for (int k = 0; k < g->n_cells; k++)
            if (C->rows[k]) fwrite(C->rows[k], 1, C->n_rows[k], pf);
        if (fclose(pf) != 0) lcg_die("building CSV in memory failed");
        fwrite(p, 1, n_p, f);
        fwrite(cur + C->n_prefix, 1, n_cur - C->n_prefix, f);
        free(C->prefix);
        C->prefix = p, C->n_prefix = n_p;
    } else {
        C->ordered = 0;
        if (n_cur) fwrite(cur, 1, n_cur, f);
        else csv_write_record(f, lcg_csv_columns, lcg_csv_n_columns);
        fwrite(C->rows[C->last], 1, C->n_rows[C->last], f);
    }
    free(up);
    if (fclose(f) != 0) lcg_die("building CSV in memory failed");
    return 0;
}

static int write_out(coord *C, int k) {
    char err[1024];
    C->last = k;
    csv_mkdirs_for(C->g->out);
    int rc = lcg_update_file(C->g->out, merge_rows, C, err, sizeof err);
    if (rc != 0) fprintf(stderr, "lcgbench sweep: %s\n", err);
    return rc;
}

/* a finished cell k from rank r: status st (0: rows) */
static void record(coord *C, int k, int r, int st, char *rows, size_t n, double secs) {
    const sw_cell *c = &C->g->cells[k];
    if (st == 0) {
        C->rows[k] = rows;
        C->n_rows[k] = n;
        C->finished++;
        if (write_out(C, k) != 0) lcg_die("cannot write the sweep's CSV '%s'", C->g->out);
        fprintf(stderr, "[sweep %d/%d] %s: done on rank %d in %.1f s\n", k + 1, C->g->n_cells, c->desc, r, secs);
    } else {
        char why[96];
        describe_status(st, why, sizeof why);
        fprintf(stderr, "lcgbench sweep: cell %d (%s) failed on rank %d (%s)\n", k + 1, c->desc, r, why);
        free(rows);
        C->failed++;
    }
}

static int coordinate(const sw_grid *g, int size, int threads) {
    coord C = {.g = g};
    C.rows = LCG_NEW(char *, g->n_cells + 1);
    C.n_rows = LCG_NEW(size_t, g->n_cells + 1);
    int *todo = LCG_NEW(int, g->n_cells + 1), n_todo = 0, next = 0;
    for (int k = 0; k < g->n_cells; k++)
        if (!g->cells[k].done) todo[n_todo++] = k;
    FILE *probe = fopen(g->out, "r");
    if (probe) {
        fclose(probe);
        C.old = lcg_read_file(g->out, &C.n_old);
        if (!C.old) lcg_die("cannot read '%s': %s", g->out, strerror(errno));
        char *up;
        size_t n_up;
        if (csv_upgrade(C.old, C.n_old, &up, &n_up)) free(C.old), C.old = up, C.n_old = n_up;
    }
    C.ordered = 1;
    C.prefix = LCG_NEW(char, C.n_old + 1);
    memcpy(C.prefix, C.old ? C.old : "", C.n_old);
    C.n_prefix = C.n_old;
    char th[64];
    if (threads) snprintf(th, sizeof th, "%d thread%s each", threads, threads == 1 ? "" : "s");
    else snprintf(th, sizeof th, "threads as given");
    fprintf(stderr, "lcgbench sweep: %d cells, %d already in %s, %d to run on %d MPI ranks, %s\n", g->n_cells,
            g->n_cells - n_todo, g->out, n_todo, size, th);
    double t0 = lcg_now();
    int remote = size - 1;
    child local = {.pid = -1};
    char *msg = NULL;
    while (remote > 0 || local.pid > 0 || next < n_todo) {
        int progress = 0;
        if (local.pid < 0 && next < n_todo) {
            int k = todo[next++];
            fprintf(stderr, "[sweep %d/%d] %s: rank 0%s%s%s\n", k + 1, g->n_cells, g->cells[k].desc,
                    g_rank_gpu[0][0] ? " (gpu " : "", g_rank_gpu[0], g_rank_gpu[0][0] ? ")" : "");
            child_start(&local, g, k, threads, 0);
            progress = 1;
        }
        if (local.pid > 0) {
            int st;
            pid_t w = waitpid(local.pid, &st, WNOHANG);
            if (w < 0 && errno != EINTR) lcg_die("waitpid: %s", strerror(errno));
            if (w == local.pid) {
                char *rows;
                size_t n;
                int k = local.cell;
                double secs = lcg_now() - local.t0;
                int rc = child_finish(&local, st, &rows, &n);
                record(&C, k, 0, rc, rows, n, secs);
                progress = 1;
            }
        }
        int flag = 0;
        MPI_Status ms;
        MPI_Iprobe(MPI_ANY_SOURCE, TAG_ASK, MPI_COMM_WORLD, &flag, &ms);
        if (flag) {
            int count;
            MPI_Get_count(&ms, MPI_BYTE, &count);
            msg = realloc(msg, (size_t)count + 1);
            if (!msg) lcg_die("out of memory");
            MPI_Recv(msg, count, MPI_BYTE, ms.MPI_SOURCE, TAG_ASK, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            int hdr[2];
            double secs;
            memcpy(hdr, msg, sizeof hdr);
            memcpy(&secs, msg + sizeof hdr, sizeof secs);
            size_t off = sizeof hdr + sizeof secs;
            if (hdr[0] >= 0) {
                size_t n = (size_t)count - off;
                char *rows = NULL;
                if (hdr[1] == 0) {
                    rows = malloc(n ? n : 1);
                    if (!rows) lcg_die("out of memory");
                    memcpy(rows, msg + off, n);
                }
                record(&C, hdr[0], ms.MPI_SOURCE, hdr[1], rows, n, secs);
            }
            int k = next < n_todo ? todo[next++] : -1;
            const char *gn = g_rank_gpu[ms.MPI_SOURCE];
            if (k >= 0)
                fprintf(stderr, "[sweep %d/%d] %s: rank %d%s%s%s\n", k + 1, g->n_cells, g->cells[k].desc, ms.MPI_SOURCE,
                        gn[0] ? " (gpu " : "", gn, gn[0] ? ")" : "");
            else remote--;
            MPI_Send(&k, 1, MPI_INT, ms.MPI_SOURCE, TAG_CELL, MPI_COMM_WORLD);
            progress = 1;
        }
        if (!progress) nanosleep(&(struct timespec){0, 5 * 1000 * 1000}, NULL);
    }
    fprintf(stderr, "lcgbench sweep: ran %d cells on %d ranks in %.1f s%s\n", C.finished + C.failed, size,
            lcg_now() - t0, C.failed ? "; some failed: run the same command again to retry them" : "");
    free(msg);
    for (int k = 0; k < g->n_cells; k++) free(C.rows[k]);
    lcg_free(C.rows);
    lcg_free(C.n_rows);
    lcg_free(todo);
    free(C.old);
    lcg_free(C.prefix);
    return C.failed ? 1 : 0;
}

/* ---- ranks 1.. ---------------------------------------------------------------------------- */
static void work(const sw_grid *g, int rank, int threads) {
    int hdr[2] = {-1, 0};
    double secs = 0;
    char *rows = NULL, *msg = NULL;
    size_t n = 0;
    for (;;) {
        size_t len = sizeof hdr + sizeof secs + n;
        msg = realloc(msg, len);
        if (!msg) lcg_die("out of memory");
        memcpy(msg, hdr, sizeof hdr);
        memcpy(msg + sizeof hdr, &secs, sizeof secs);
        if (n) memcpy(msg + sizeof hdr + sizeof secs, rows, n);
        free(rows);
        rows = NULL;
        n = 0;
        if (len > (size_t)1 << 30) lcg_die("cell %d wrote more than 1 GiB of rows", hdr[0] + 1);
        MPI_Send(msg, (int)len, MPI_BYTE, 0, TAG_ASK, MPI_COMM_WORLD);
        int k;
        MPI_Recv(&k, 1, MPI_INT, 0, TAG_CELL, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        if (k < 0) break;
        child ch;
        child_start(&ch, g, k, threads, rank);
        int st;
        while (waitpid(ch.pid, &st, 0) < 0)
            if (errno != EINTR) lcg_die("waitpid: %s", strerror(errno));
        secs = lcg_now() - ch.t0;
        hdr[0] = k;
        hdr[1] = child_finish(&ch, st, &rows, &n);
    }
    free(msg);
}

int sweep_mpi(sw_grid *g) {
    MPI_Init(NULL, NULL);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGHUP, on_signal);
    int local_rank = 0;
    int threads = local_threads(&local_rank); /* collective: every rank */
    /* this rank's GPU when the cells run on cuda: local rank mod the GPUs it may use */
    char mine[32] = "", vis[SW_MAX_WORKERS * 4][32];
    int cuda = 0;
    for (int k = 0; k < g->n_cells; k++) cuda |= strcmp(g->cells[k].info.device, "cuda") == 0;
    int n_vis = g->gpus_set ? g->workers : cuda ? sw_visible_gpus(vis, SW_MAX_WORKERS * 4) : 0;
    if (n_vis > 0) {
        snprintf(mine, sizeof mine, "%s", g->gpus_set ? g->gpu[local_rank % n_vis] : vis[local_rank % n_vis]);
        g_env = sw_child_env(mine);
    }
    g_rank_gpu = lcg_alloc(sizeof *g_rank_gpu * (size_t)size);
    MPI_Gather(mine, 32, MPI_CHAR, g_rank_gpu, 32, MPI_CHAR, 0, MPI_COMM_WORLD);
    if (g->threads_set || getenv("OMP_NUM_THREADS")) threads = 0; /* the runs take the user's */
    int ok = 1;
    if (rank == 0) ok = sw_mark_done(g, g->out) >= 0;
    MPI_Bcast(&ok, 1, MPI_INT, 0, MPI_COMM_WORLD);
    int rc = 1;
    if (ok) {
        if (rank == 0) rc = coordinate(g, size, threads);
        else {
            work(g, rank, threads);
            rc = 0;
        }
    }
    MPI_Finalize();
    sw_child_env_free(g_env);
    lcg_free(g_rank_gpu);
    return rc;
}
