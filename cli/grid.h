/*
 * grid.h: the grid of a sweep (grid.c), shared by the commands that enumerate it: sweep.c
 * (serial and --shard K/N), merge.c (shard CSVs back into grid order) and mpi.c (the MPI
 * sweep of lcgbench-mpi). Nothing here trains or writes.
 */
#ifndef LCG_GRID_H
#define LCG_GRID_H

#include "cli.h"

#define SW_MAX_LIST 64
#define SW_MAX_ARGS 128
#define SW_MAX_WORKERS 64

typedef struct {
    char *argv[SW_MAX_ARGS * 2 + 16]; /* the run flags of this cell */
    int argc;
    char desc[256];                   /* e.g. "copy softmax nape seed 1" */
    lcg_run_info info;                /* its run id, eval lengths and output CSV */
    int done;                         /* its rows are already in the output CSV */
    char missing[512];                /* some are: the lengths still to evaluate (--eval-lens) */
    int mine;                         /* in this shard (every cell without --shard) */
} sw_cell;

enum { SW_SWEEP, SW_MERGE };

typedef struct {
    cli_ctx *cx;            /* the command's context: usage errors name it */
    sw_cell *cells;
    int n_cells;
    const char *out;        /* the CSV every cell appends to */
    int dry;                /* sweep --dry-run */
    int shard_k, shard_n;   /* sweep --shard K/N (0/0 without) */
    int threads_set;        /* --threads given (passed on to every run) */
    int workers;            /* sweep --workers N or the entries of --gpus: cells in child processes
                             * (0: in this process, one after another) */
    int gpus_set;           /* --gpus given: worker w runs on GPU gpu[w] */
    char gpu[SW_MAX_WORKERS][32]; /* its CUDA_VISIBLE_DEVICES (an entry of this process's, if set) */
    int child;              /* --child: one worker's cell (workers.c starts it); quiet summary */
    const char *timeline;   /* --timeline FILE: each cell's start and end, appended as CSV */
    const char *merge_out;  /* merge --out */
    char **inputs;          /* merge's input CSVs */
    int n_inputs;
    void *priv;             /* the parsed grid the cells point into */
} sw_grid;

/* parses the flags of `lcgbench sweep` or `merge` (mode), enumerates the cells in grid order
 * and checks every one (cli_run_cell without executing). Usage errors exit 2; returns 0, 1
 * after a printed runtime error, or -1 when --help was asked for (the caller prints it);
 * sw_grid_free it in any case */
int sw_grid_build(sw_grid *g, cli_ctx *cx, int mode, int argc, char **argv);
void sw_grid_free(sw_grid *g);
/* marks the cells whose every row (run id, eval length) is in the CSV at path, which need not
 * exist; returns how many, or -1 after a printed error. A cell with only some of its rows there
 * (its ladder grew since: a larger --max-len) is narrowed to the lengths missing (--eval-lens),
 * so running it again (the same model: training is deterministic) adds just those rows */
int sw_mark_done(sw_grid *g, const char *path);

/* ranks in the MPI job that started this process according to its launcher's environment
 * (mpirun, srun), 0 when not started by one */
int sw_launcher_size(void);
/* the MPI sweep (mpi.c, lcgbench-mpi only): coordinates the cells across ranks; every rank
 * calls it with the same grid; returns the exit status of this rank */
int sweep_mpi(sw_grid *g);
/* the `run` command line of one cell writing to out (for a child process): argv[0] is exe,
 * then "run", the cell's flags with --out replaced, and --threads if threads > 0; malloc'd
 * array of pointers into the cell and into out/threads_buf, NULL-terminated */
char **sw_child_argv(const sw_cell *c, const char *exe, const char *out, int threads, char *threads_buf);
/* this process's environment with CUDA_VISIBLE_DEVICES=cvd (malloc'd array, NULL-terminated;
 * the strings are environ's but one, also malloc'd: free with sw_child_env_free) */
char **sw_child_env(const char *cvd);
void sw_child_env_free(char **env);
/* the GPUs this process may use according to CUDA_VISIBLE_DEVICES (its entries in out, at most
 * max), else /proc/driver/nvidia/gpus (entries "0".."n-1"); their count, 0 if unknown */
int sw_visible_gpus(char out[][32], int max);
/* the cells of g run by g->workers child processes (workers.c); claims is the sweep's claim
 * descriptor, t0 its start; returns the sweep's exit status */
int sweep_workers(sw_grid *g, int claims, double t0);
/* --timeline: the file opened for appending (its header written when new), or NULL after a
 * message; a row for cell k run by `worker` on `gpu` ("" on the CPU) from start to end (Unix
 * seconds: sw_unix_now) with its status (done, failed, stopped, elsewhere) */
FILE *sw_timeline_open(const sw_grid *g);
void sw_timeline_row(FILE *tl, const sw_grid *g, int k, int worker, const char *gpu, double start, double end,
                     const char *status);
double sw_unix_now(void);
/* puts the rows of g's cells in grid order in its CSV (csv_order_runs); 0, or 1 after a message */
int sw_order_rows(const sw_grid *g);

#endif
