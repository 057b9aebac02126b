/*
 * main.c: the `lcgbench` command line: one table of commands (name, entry point, one-line
 * summary) that dispatch, the main help and `help <command>` all read, and the `help` topics
 * listing what the registries hold (tasks, attention normalizers, position encodings,
 * presets; `--names` prints the bare names, one per line, for scripts). Each command is its
 * own file; parse state travels in a cli_ctx, never in globals.
 */
#include "cli.h"
#include "../harness/threads.h"
#include "../harness/preset.h"

#include <stdio.h>
#include <string.h>

static int cmd_help(cli_ctx *cx, int argc, char **argv);

static const struct {
    const char *name;
    int (*fn)(cli_ctx *cx, int argc, char **argv);
    const char *summary;
} commands[] = {
    {"run", cmd_run, "train on a task at short length, evaluate a ladder of lengths, append CSV"},
    {"sweep", cmd_sweep, "run a grid of runs (tasks x attentions x encodings x seeds) into one CSV, resumably"},
    {"merge", cmd_merge, "the CSVs of a sharded sweep (sweep --shard K/N) into one, in grid order"},
    {"table", cmd_table, "result CSVs as the paper's Table 1 (Markdown, CSV, LaTeX) or plot data"},
    {"regress", cmd_regress, "compare a result CSV with a committed baseline (the CI guard)"},
    {"gen", cmd_gen, "write a task's samples in the reference's file format (for run --data)"},
    {"attnmap", cmd_attnmap, "draw one sample's attention, layer x head, at a length, answers marked (gnuplot)"},
    {"help", cmd_help, "this text; 'lcgbench help <command|tasks|attn|pos|presets>' for more"},
};
enum { N_COMMANDS = (int)(sizeof commands / sizeof *commands) };

static void main_help(FILE *out) {
    fprintf(out, "lcgbench %s: length-extrapolation benchmarks for attention normalizers\n\n"
                 "usage: lcgbench <command> [flags]\n\ncommands:\n",
            LCG_VERSION);
    for (int i = 0; i < N_COMMANDS; i++) fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nEvery command takes --help. 'lcgbench --version' prints the version.\n");
}

/* the names a topic lists, one per line (`help <topic> --names`); 0, or -1 for no such topic */
static int print_names(const char *t) {
    if (strcmp(t, "tasks") == 0)
        for (int i = 0; lcg_task_at(i); i++) printf("%s\n", lcg_task_at(i)->name);
    else if (strcmp(t, "attn") == 0)
        for (int i = 0; lcg_normalizer_at(i); i++) printf("%s\n", lcg_normalizer_at(i)->name);
    else if (strcmp(t, "pos") == 0)
        for (int i = 0; lcg_posenc_at(i); i++) printf("%s\n", lcg_posenc_at(i)->name);
    else if (strcmp(t, "presets") == 0)
        for (int p = 0; lcg_preset_at(p); p++) printf("%s\n", lcg_preset_at(p));
    else if (strcmp(t, "commands") == 0)
        for (int i = 0; i < N_COMMANDS; i++) printf("%s\n", commands[i].name);
    else
        return -1;
    return 0;
}

static int cmd_help(cli_ctx *cx, int argc, char **argv) {
    if (argc == 0) {
        main_help(stdout);
        return 0;
    }
    int names = argc == 2 && strcmp(argv[1], "--names") == 0;
    if (argc > 2 || (argc == 2 && !names)) cli_usage_error(cx, "takes at most one topic (and --names after it)");
    const char *t = argv[0];
    if (names) {
        if (print_names(t) != 0) cli_usage_error(cx, "--names: topic '%s' has no names (tasks, attn, pos, presets, commands)", t);
        return 0;
    }
    if (strcmp(t, "--help") == 0) {
        main_help(stdout);
        return 0;
    }
    for (int i = 0; i < N_COMMANDS; i++)
        if (strcmp(t, commands[i].name) == 0) {
            if (commands[i].fn == cmd_help) {
                main_help(stdout);
                return 0;
            }
            char *args[] = {"--help"};
            cx->cmd = commands[i].name;
            return commands[i].fn(cx, 1, args);
        }
    if (strcmp(t, "presets") == 0) {
        for (int p = 0; lcg_preset_at(p); p++) {
            const char *name = lcg_preset_at(p);
            printf("%s:\n", name);
            for (int i = 0; lcg_task_at(i); i++) { /* each key once, as it applies: the first setting wins */
                printf("  %-10s", lcg_task_at(i)->name);
                const char *set, *keys[64];
                int n_keys = 0;
                for (int k = 0; (set = lcg_preset_settings(name, lcg_task_at(i)->name, k)); k++)
                    for (const char *p = set; *p;) {
                        size_t len = strcspn(p, ";"), kl = strcspn(p, "=");
                        int seen = 0;
                        for (int j = 0; j < n_keys && !seen; j++)
                            seen = strncmp(keys[j], p, kl) == 0 && (keys[j][kl] == '=' || keys[j][kl] == ';' || !keys[j][kl]);
                        if (!seen && n_keys < 64) {
                            keys[n_keys++] = p;
                            printf("%s%.*s", n_keys == 1 ? " " : ";", (int)len, p);
                        }
                        p += len + (p[len] == ';');
                    }
                printf("\n");
            }
        }
        printf("(the settings that apply, a task's own over the preset's; flags on the command line win over both)\n");
        return 0;
    }
    if (strcmp(t, "tasks") == 0) {
        for (int i = 0; lcg_task_at(i); i++) {
            const lcg_task *k = lcg_task_at(i);
            printf("%-10s %s (default length %d +- %d; the reference's %d +- %d)\n", k->name, k->help, k->cpu_len,
                   k->cpu_vary, k->def_len, k->def_vary);
            for (int j = 0; j < k->n_params; j++)
                printf("    --%-14s %s (default %g)\n", k->params[j].flag, k->params[j].help, k->params[j].def);
        }
        return 0;
    }
    if (strcmp(t, "attn") == 0) {
        for (int i = 0; lcg_normalizer_at(i); i++)
            printf("%-16s %s\n", lcg_normalizer_at(i)->name, lcg_normalizer_at(i)->help);
        return 0;
    }
    if (strcmp(t, "pos") == 0) {
        for (int i = 0; lcg_posenc_at(i); i++) printf("%-10s %s\n", lcg_posenc_at(i)->name, lcg_posenc_at(i)->help);
        return 0;
    }
    char cmds[256] = "";
    for (int i = 0, off = 0; i < N_COMMANDS; i++)
        off += snprintf(cmds + off, sizeof cmds - (size_t)off, "%s%s", i ? ", " : "", commands[i].name);
    cli_usage_error(cx, "unknown topic '%s' (commands: %s; topics: tasks, attn, pos, presets)", t, cmds);
}

int cli_main(cli_ctx *cx, int argc, char **argv) {
    if (argc < 2) {
        main_help(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("lcgbench %s\n", LCG_VERSION);
        return 0;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) cmd = "help", argc = 2;
    for (int i = 0; i < N_COMMANDS; i++)
        if (strcmp(cmd, commands[i].name) == 0) {
            cx->cmd = commands[i].name;
            for (int k = 2; k < argc; k++) /* -h: the short form every tool takes */
                if (strcmp(argv[k], "-h") == 0) argv[k] = "--help";
            return commands[i].fn(cx, argc - 2, argv + 2);
        }
    fprintf(stderr, "lcgbench: unknown command '%s' (see 'lcgbench --help')\n", cmd);
    return 2;
}

#ifndef LCG_FUZZ /* the CLI fuzzer calls cli_main itself */
int main(int argc, char **argv) {
    lcg_threads_init(argv); /* a short OpenMP spin unless the user chose one (harness/threads.c) */
    cli_ctx cx = {.cmd = "lcgbench"};
    return cli_main(&cx, argc, argv);
}
#endif
