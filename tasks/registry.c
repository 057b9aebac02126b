/*
 * registry.c: the list of tasks and the helpers every task shares.
 */
#include "task.h"

#include <stdio.h>
#include <string.h>

extern const lcg_task lcg_task_copy, lcg_task_sort, lcg_task_reverse, lcg_task_recall, lcg_task_mqmtar,
    lcg_task_flipflop, lcg_task_count, lcg_task_nback;

static const lcg_task *const tasks[] = {&lcg_task_copy,     &lcg_task_sort,  &lcg_task_reverse, &lcg_task_recall,
                                        &lcg_task_mqmtar,   &lcg_task_flipflop, &lcg_task_count, &lcg_task_nback};

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
    for (int i = 0; i < cfg->task->n_params && off < n; i++)
        off += (size_t)snprintf(out + off, n - off, "%s%s=%.10g", i ? ";" : "",
                                cfg->task->params[i].flag, cfg->p[i]);
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

int lcg_task_out_vocab(const lcg_task_cfg *cfg) {
    int v = lcg_task_tokens(cfg).vocab;
    if (cfg->task->kind == LCG_TASK_TOKEN_CLS && cfg->task->n_labels(cfg) > v) v = cfg->task->n_labels(cfg);
    return v;
}
