/*
 * registry.c: the list of tasks and the helpers every task shares. A new task is its own file
 * (defining `const lcg_task lcg_task_<name>`, see task.h) and one X(<name>) line below; the
 * Makefile finds the file, and the CLI, help, presets and scripts (`lcgbench help tasks
 * --names`) learn the task from here.
 */
#include "task.h"

#include <stdio.h>
#include <string.h>

/* the tasks, in the order help lists them */
#define LCG_TASKS(X) \
    X(copy)          \
    X(sort)          \
    X(reverse)       \
    X(recall)        \
    X(mqmtar)        \
    X(flipflop)      \
    X(parity)        \
    X(count)         \
    X(nback)

#define TASK_DECL(name) extern const lcg_task lcg_task_##name;
LCG_TASKS(TASK_DECL)
#define TASK_ENTRY(name) &lcg_task_##name,
static const lcg_task *const tasks[] = {LCG_TASKS(TASK_ENTRY)};

const lcg_task *lcg_task_at(int i) {
    return i >= 0 && i < (int)(sizeof tasks / sizeof *tasks) ? tasks[i] : NULL;
}

const lcg_task *lcg_task_find(const char *name) {
    for (int i = 0; lcg_task_at(i); i++)
        if (strcmp(tasks[i]->name, name) == 0) return tasks[i];
    return NULL;
}

void lcg_task_defaults(lcg_task_cfg *cfg, const lcg_task *task) {
    memset(cfg, 0, sizeof *cfg);
    cfg->task = task;
    for (int i = 0; i < task->n_params; i++) cfg->p[i] = task->params[i].def;
}

void lcg_task_params_str(const lcg_task_cfg *cfg, char *out, size_t n) {
    size_t off = 0;
    out[0] = '\0';
    for (int i = 0; i < cfg->task->n_params && off < n; i++) {
        if (cfg->task->params[i].omit_default && cfg->p[i] == cfg->task->params[i].def) continue;
        off += (size_t)snprintf(out + off, n - off, "%s%s=%.10g", off ? ";" : "",
                                cfg->task->params[i].flag, cfg->p[i]);
    }
}

lcg_tokens lcg_task_tokens(const lcg_task_cfg *cfg) {
    int M = cfg->task->max_token(cfg);
    return (lcg_tokens){M + 1, M + 2, M + 3, M + 4, M + 5, M + 6};
}

void lcg_task_prepare(lcg_task_cfg *cfg, uint64_t seed) {
    if (cfg->task->prepare) cfg->task->prepare(cfg, seed);
}

void lcg_task_release(lcg_task_cfg *cfg) {
    if (cfg->task->release) cfg->task->release(cfg);
    cfg->state = NULL;
}

void lcg_task_split(lcg_task_cfg *split, const lcg_task_cfg *cfg, uint64_t seed, const char *stream, uint64_t index) {
    *split = *cfg;
    if (cfg->task->prepare_split) cfg->task->prepare_split(split, seed, stream, index);
}

void lcg_task_split_release(lcg_task_cfg *split, const lcg_task_cfg *cfg) {
    if (split->state != cfg->state && cfg->task->release) cfg->task->release(split);
    split->state = NULL;
}

int lcg_task_out_vocab(const lcg_task_cfg *cfg) {
    int v = lcg_task_tokens(cfg).vocab;
    if (cfg->task->kind == LCG_TASK_TOKEN_CLS && cfg->task->n_labels(cfg) > v) v = cfg->task->n_labels(cfg);
    return v;
}
