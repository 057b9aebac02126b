/*
 * sweep.c: `lcgbench sweep`, a grid of runs (tasks x attentions x position encodings x
 * seeds, from flags or a grid file: grid.c) appended to one CSV. Every cell is parsed and
 * checked before any work starts; cells whose rows are already in the output CSV (same run id
 * and eval length) are skipped, so a sweep that was interrupted resumes where it stopped and
 * ends with the same rows, in the same order, as one that was not (each run's rows are
 * appended atomically: a cell is in the file whole or not at all). SIGINT/SIGTERM stop the
 * sweep after the current cell has written its checkpoint (see `run`); killed at any moment,
 * the rerun skips the cells already in the CSV and redoes the one that was cut short.
 * `--shard K/N` runs every N-th cell (`lcgbench merge` combines the shards' CSVs); under
 * mpirun, lcgbench-mpi hands the cells to mpi.c; `--workers N` / `--gpus LIST` run cells side
 * by side in child processes (workers.c), each child a `sweep --child` of one cell, run here.
 * At the end the grid's rows are put in grid order in the CSV (a no-op for a file a serial
 * sweep wrote), so a sweep resuming what a parallel one left ends with the serial CSV too.
 */
#define _POSIX_C_SOURCE 200809L
#include "grid.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void sweep_help(void) {
    printf("usage: lcgbench sweep [--grid FILE | --task A,B --attn A,B --pos A,B --seed 1,2,3] [run flags]\n\n"
           "Run a grid of 'lcgbench run's into one CSV. Every cell is checked before any work starts;\n"
           "cells already in the output CSV are skipped, so an interrupted sweep resumes where it\n"
           "stopped and writes the same rows as an uninterrupted one.\n\n"
           "flags:\n"
           "  --grid FILE              grid file: 'key = values' lines (task, attn, pos, seed, args) and\n"
           "                           [section] headers for several sub-grids (see the README)\n"
           "  --task LIST              comma-separated tasks (copy)\n"
           "  --attn LIST              attention normalizers (the run default)\n"
           "  --pos LIST               position encodings (the run default or the preset's)\n"
           "  --seed LIST              seeds (1)\n"
           "  --shard K/N              run only cells k with k mod N = K-1 (k from 0 in grid order), for\n"
           "                           job arrays; give each shard its own --out, then 'lcgbench merge'\n"
           "  --workers N              run N cells at a time, each in a child process with its share of\n"
           "                           the threads (CPU cells); the CSV ends as the serial sweep's\n"
           "  --gpus LIST|N            with --device cuda: one cell per GPU at a time, each child with\n"
           "                           CUDA_VISIBLE_DEVICES set to its GPU (0,1,2,3; 0,0: two on GPU 0;\n"
           "                           N: 0..N-1)\n"
           "  --timeline FILE          append each cell's start and end, worker and GPU to FILE (CSV)\n"
           "  --dry-run                list the cells, done or to do, and run none\n"
           "  --help                   show this help\n"
           "Every other flag goes to each run unchanged (e.g. --preset mini, --out FILE, --threads N).\n"
           "Under mpirun, lcgbench-mpi (make MPI=1) spreads the cells over the ranks (see the README).\n");
}

/* `sweep --child`: the one cell of a parallel sweep's worker (workers.c reads the status):
 * 0 done, SW_EXIT_ELSEWHERE (75) done or held by another sweep, SW_EXIT_WRITE (74) its rows could
 * not be written, 128 + the signal that stopped it (its checkpoint kept), else 1 */
static int sweep_child(cli_ctx *cx, sw_grid *g) {
    char err[768];
    if (g->n_cells != 1) cli_usage_error(cx, "--child runs one cell, not %d", g->n_cells);
    sw_cell *c = &g->cells[0];
    int claims = lcg_claim_open(g->out, err, sizeof err);
    if (claims < 0) {
        fprintf(stderr, "lcgbench sweep: %s\n", err);
        return 1;
    }
    int got = lcg_claim(claims, c->info.run_id);
    if (got < 0) lcg_die("cannot claim a cell in '%s.lock': %s", g->out, strerror(errno));
    int n_done = got ? sw_mark_done(g, g->out) : 0;
    if (n_done < 0) {
        lcg_claim_close(claims);
        return 1;
    }
    if (!got || c->done) {
        lcg_claim_close(claims);
        return 75;
    }
    lcg_run_info info;
    int rc = cli_run_cell(cx, c->argc, c->argv, CELL_RUN, &info);
    lcg_claim_close(claims);
    if (lcg_stop_signal) return 128 + lcg_stop_signal;
    if (rc != 0) return info.write_failed ? 74 : 1;
    return 0;
}

int cmd_sweep(cli_ctx *cx, int argc, char **argv) {
    sw_grid g;
#ifdef LCG_MPI
    /* every rank checks the grid; rank 0 alone says what is wrong with it */
    const char *rank_env = getenv("OMPI_COMM_WORLD_RANK");
    if (!rank_env) rank_env = getenv("PMI_RANK");
    if (!rank_env) rank_env = getenv("PMIX_RANK");
    int rank = rank_env ? atoi(rank_env) : 0, saved_err = -1;
    if (rank > 0) {
        fflush(stderr);
        saved_err = dup(2);
        FILE *null = freopen("/dev/null", "w", stderr);
        (void)null;
    }
    int rc = sw_grid_build(&g, cx, SW_SWEEP, argc, argv);
    if (saved_err >= 0) {
        fflush(stderr);
        dup2(saved_err, 2);
        close(saved_err);
    }
    if (rc == 0 && g.dry && rank > 0) rc = -2; /* rank 0 lists the cells */
#else
    int rc = sw_grid_build(&g, cx, SW_SWEEP, argc, argv);
#endif
    if (rc == -1) sweep_help();
    if (rc != 0) {
        sw_grid_free(&g);
        return rc < 0 ? 0 : rc;
    }
#ifdef LCG_MPI
    if (sw_launcher_size() > 0 && !g.dry) {
        if (g.shard_n) cli_usage_error(cx, "--shard is for runs without MPI: under mpirun the ranks share the grid");
        if (g.workers && !g.gpus_set)
            cli_usage_error(cx, "--workers is for runs without MPI: under mpirun each rank is a worker");
        rc = sweep_mpi(&g);
        sw_grid_free(&g);
        return rc;
    }
#else
    if (sw_launcher_size() > 1 && !g.dry)
        cli_usage_error(cx, "started as one of %d MPI ranks, but this lcgbench is built without MPI: every rank would run "
                 "the whole grid; build lcgbench-mpi with 'make MPI=1' and run that", sw_launcher_size());
#endif
    if (g.child) {
        rc = sweep_child(cx, &g);
        sw_grid_free(&g);
        return rc;
    }
    int n_cells = g.n_cells, n_mine = 0;
    sw_cell *cells = g.cells;
    char err[768];
    if (!g.dry && (csv_mkdirs_for(g.out), lcg_check_writable(g.out, err, sizeof err)) != 0) {
        fprintf(stderr, "lcgbench sweep: %s\n", err);
        sw_grid_free(&g);
        return 1;
    }
    int n_done = sw_mark_done(&g, g.out), n_todo = 0;
    if (n_done < 0) {
        sw_grid_free(&g);
        return 1;
    }
    for (int k = 0; k < n_cells; k++) {
        n_mine += cells[k].mine;
        n_todo += cells[k].mine && !cells[k].done;
    }
    if (g.shard_n)
        fprintf(stderr, "lcgbench sweep: shard %d/%d: %d of %d cells, %d already in %s, %d to run\n", g.shard_k,
                g.shard_n, n_mine, n_cells, n_mine - n_todo, g.out, n_todo);
    else
        fprintf(stderr, "lcgbench sweep: %d cell%s, %d already in %s, %d to run\n", n_cells, n_cells == 1 ? "" : "s",
                n_done, g.out, n_todo);
    if (g.dry) {
        for (int k = 0; k < n_cells; k++)
            if (cells[k].mine)
                printf("%4d  %-5s %016llx  %s\n", k + 1, cells[k].done ? "done" : "todo",
                       (unsigned long long)cells[k].info.run_id, cells[k].desc);
    }
    int failed = 0, ran = 0, elsewhere = 0;
    double t0 = lcg_now();
    /* concurrent sweeps on one CSV split the cells: each claims a cell (a lock beside the CSV,
     * released when its process ends) before running it, and skips the cells another holds */
    int claims = g.dry ? -1 : lcg_claim_open(g.out, err, sizeof err);
    if (!g.dry && claims < 0) {
        fprintf(stderr, "lcgbench sweep: %s\n", err);
        sw_grid_free(&g);
        return 1;
    }
    if (g.workers && !g.dry) {
        rc = sweep_workers(&g, claims, t0);
        lcg_claim_close(claims);
        sw_grid_free(&g);
        return rc;
    }
    FILE *tl = g.timeline && !g.dry ? sw_timeline_open(&g) : NULL;
    if (g.timeline && !g.dry && !tl) {
        lcg_claim_close(claims);
        sw_grid_free(&g);
        return 1;
    }
    for (int k = 0; k < n_cells && !g.dry; k++) {
        if (cells[k].done || !cells[k].mine) continue;
        uint64_t key = cells[k].info.run_id;
        int got = lcg_claim(claims, key);
        if (got < 0) lcg_die("cannot claim cell %d in '%s.lock': %s", k + 1, g.out, strerror(errno));
        if (got == 0 || (sw_mark_done(&g, g.out) > 0 && cells[k].done)) { /* running or finished elsewhere */
            if (got) lcg_unclaim(claims, key);
            else elsewhere++;
            continue;
        }
        fprintf(stderr, "[sweep %d/%d] %s\n", k + 1, n_cells, cells[k].desc);
        lcg_run_info info;
        double u_start = sw_unix_now();
        int rc = cli_run_cell(cx, cells[k].argc, cells[k].argv, CELL_RUN, &info);
        if (tl) sw_timeline_row(tl, &g, k, 0, "", u_start, sw_unix_now(), lcg_stop_signal ? "stopped" : rc ? "failed" : "done");
        lcg_unclaim(claims, key);
        if (lcg_stop_signal) { /* SIGINT/SIGTERM: the cell said what it kept; no further cells */
            fprintf(stderr, "lcgbench sweep: stopped in cell %d (%s); run the same command again to continue\n",
                    k + 1, cells[k].desc);
            if (tl) fclose(tl);
            sw_grid_free(&g);
            return 128 + lcg_stop_signal;
        }
        if (rc != 0) {
            fprintf(stderr, "lcgbench sweep: cell %d (%s) failed\n", k + 1, cells[k].desc);
            failed++;
            if (info.write_failed) { /* every later cell would train only to fail the same way */
                fprintf(stderr, "lcgbench sweep: stopped: %s could not be written; fix that and run the same command "
                                "again\n", g.out);
                lcg_claim_close(claims);
                if (tl) fclose(tl);
                sw_grid_free(&g);
                return 1;
            }
        }
        ran++;
    }
    if (!g.dry && sw_order_rows(&g) != 0) failed++; /* what a parallel sweep left, in grid order */
    if (!g.dry)
        fprintf(stderr, "lcgbench sweep: ran %d cells in %.1f s%s\n", ran, lcg_now() - t0,
                failed ? "; some failed: run the same command again to retry them" : "");
    if (elsewhere)
        fprintf(stderr, "lcgbench sweep: %d cell%s left to another sweep running on %s\n", elsewhere,
                elsewhere == 1 ? " was" : "s were", g.out);
    lcg_claim_close(claims);
    if (tl && fclose(tl) != 0) fprintf(stderr, "lcgbench sweep: --timeline: writing '%s' failed\n", g.timeline);
    sw_grid_free(&g);
    return failed ? 1 : 0;
}
