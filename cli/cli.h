/*
 * cli.h: what the commands of cli/ share: the parse context every command carries (no parse
 * state lives in globals), the one flag engine and usage-error helper (flags.c), one `run`
 * parsed and checked or executed for sweep, merge and MPI (cmd_run.c), and the command entry
 * points main.c's table dispatches to. Nothing below cli/ includes this.
 */
#ifndef LCG_CLI_H
#define LCG_CLI_H

#include "../harness/csv.h"
#include "../harness/run.h"

#ifdef LCG_FUZZ
#include <setjmp.h>
#endif

/* the context of one command line: which command is parsing (named in every message), what
 * an error is about (e.g. "cell 3 (copy softmax nape seed 1)" while a sweep checks its cells;
 * "" for none) and, for a usage error that does not exit (fuzzing builds), what to release */
typedef struct cli_ctx {
    const char *cmd;
    char where[512];
    void (*release)(void *); /* frees `owned` (the run being parsed) after a usage error */
    void *owned;
#ifdef LCG_FUZZ
    jmp_buf *fuzz_jmp;       /* usage errors longjmp here (value 2) instead of exiting */
#endif
} cli_ctx;

/* "lcgbench <cmd>: [<where>: ]<message> (see 'lcgbench <cmd> --help')" on stderr, exit 2 */
_Noreturn void cli_usage_error(const cli_ctx *cx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* releases what cx owns (after a usage error longjmp'd out of a fuzzing build) */
void cli_ctx_release(cli_ctx *cx);

/* ---- the flag engine (flags.c) -------------------------------------------------------------
 * Flags are one table, parsed strictly: --name value | --name=value | --bool; an unknown flag,
 * a flag given twice, a missing value, a malformed or out-of-range number is a usage error
 * naming the flag. */
enum { FL_INT, FL_LONG, FL_U64, FL_DOUBLE, FL_STR, FL_BOOL, FL_TASKP };

typedef struct {
    const char *name; /* without "--"; also the checkpoint note key */
    int kind;
    void *ptr;
    double min, max;
    const char *meta, *help;
    int in_note;      /* recorded in checkpoints: must agree with --load */
    int set;          /* given on the command line (1), or by a preset (2) */
} cli_flag;

/* parses s for flag f into dst (of f->ptr's type); NULL or why not (static text) */
const char *cli_parse_value(const cli_flag *f, const char *s, void *dst);
cli_flag *cli_find_flag(cli_flag *fl, int n, const char *name, size_t len);
void cli_parse_args(const cli_ctx *cx, cli_flag *fl, int n_fl, int argc, char **argv);
void cli_print_flags(const cli_flag *fl, int n);
/* the task named by --task (or --task=) in argv, else def */
const char *cli_scan_task(int argc, char **argv, const char *def);
/* appends the task's own parameters to a flag table; returns the new count */
int cli_add_task_flags(cli_flag *fl, int n, lcg_task_cfg *task);

/* ---- one run, for the commands that enumerate many (cmd_run.c) ----------------------------- */
typedef struct {
    uint64_t run_id;
    int n_rows;          /* one per evaluated length: */
    int lens[LCG_MAX_RUNGS];
    int n_last;          /* the last checkpoint's rows beside a best checkpoint's: the first
                          * n_last lengths (--last-max); n_rows without one */
    char out[4096];
    char device[16];     /* --device: cpu or cuda */
    char log_csv[4200];  /* --log-csv with its {keys} filled in, or "" */
    int write_failed;    /* executed: its rows could not be written (a full disk?) */
} lcg_run_info;
/* one grid cell's `lcgbench run` given its flags: parses and checks them (--load, --resume and
 * --save are refused: a sweep trains every cell), a usage error exiting 2 as for `run` itself
 * and naming cx->where; fills the run id, the number of CSV rows it writes and the output
 * path. `check`: CELL_FLAGS checks the flags alone (merge, --dry-run: a GPU grid's cells are
 * named on a machine without a GPU or a CUDA build); CELL_DEVICE also the device and the
 * memory here (a sweep, before any work); CELL_RUN also trains (continuing from its own
 * checkpoint if one is there), evaluates and appends. 0, or 1 after a runtime error */
enum { CELL_FLAGS, CELL_DEVICE, CELL_RUN };
int cli_run_cell(cli_ctx *cx, int argc, char **argv, int check, lcg_run_info *info);

/* ---- the commands (one file each) ------------------------------------------------------------ */
int cmd_run(cli_ctx *cx, int argc, char **argv);
int cmd_gen(cli_ctx *cx, int argc, char **argv);
int cmd_sweep(cli_ctx *cx, int argc, char **argv);
int cmd_merge(cli_ctx *cx, int argc, char **argv);
int cmd_table(cli_ctx *cx, int argc, char **argv);
int cmd_regress(cli_ctx *cx, int argc, char **argv);
int cmd_attnmap(cli_ctx *cx, int argc, char **argv);
/* `lcgbench <argv[1]> ...`: the command table's dispatch (main.c; main calls it with a fresh
 * context, the CLI fuzzer with its own) */
int cli_main(cli_ctx *cx, int argc, char **argv);

#endif
