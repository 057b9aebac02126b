/*
 * config.c: parameter tensor sizes and config validation, shared by the float and double
 * models, the checkpoint code and the CLI.
 */
#include "model.h"

#include <math.h>
#include <stdio.h>

const char *const lcg_param_names[LCG_N_PARAM_TENSORS] = {
    "embedding", "ln_in", "wqkv", "wo", "ln_post_attn", "ln_pre_ffn",
    "w_gate_up", "w_down", "ln_post_ffn", "ln_final", "lm_head",
    "ls_beta", "ls_gamma", "ls_w_beta", "ls_b_beta", "ls_w_gamma", "ls_b_gamma"};

int lcg_scaled_heads(const lcg_config *c, int *h0) {
    *h0 = c->pos == LCG_POS_NAPE ? c->H / 2 : 0;
    return c->H - *h0;
}

size_t lcg_param_sizes(const lcg_config *c, size_t s[LCG_N_PARAM_TENSORS]) {
    size_t L = (size_t)c->L, C = (size_t)c->C, HD = (size_t)c->H * c->D, F = (size_t)c->F;
    s[LCG_P_EMB] = (size_t)c->V * C;
    s[LCG_P_LN_IN] = L * C;
    s[LCG_P_WQKV] = L * C * 3 * HD;
    s[LCG_P_WO] = L * HD * C;
    s[LCG_P_LN_PA] = L * C;
    s[LCG_P_LN_PF] = L * C;
    s[LCG_P_WGU] = L * C * 2 * F;
    s[LCG_P_WDOWN] = L * F * C;
    s[LCG_P_LN_PO] = L * C;
    s[LCG_P_LN_F] = C;
    s[LCG_P_LM] = C * (size_t)c->V;
    int h0, scale = lcg_normalizer_at(c->norm) ? lcg_normalizer_at(c->norm)->scale : LCG_SCALE_NONE;
    size_t Hs = (size_t)lcg_scaled_heads(c, &h0);
    s[LCG_P_LS_BETA] = scale == LCG_SCALE_SSMAX || scale == LCG_SCALE_LEARN ? L * Hs : 0;
    s[LCG_P_LS_GAMMA] = scale == LCG_SCALE_LEARN ? L * Hs : 0;
    s[LCG_P_LS_WB] = s[LCG_P_LS_WG] = scale == LCG_SCALE_ADAPT ? L * C * Hs : 0;
    s[LCG_P_LS_BB] = s[LCG_P_LS_BG] = scale == LCG_SCALE_ADAPT ? L * Hs : 0;
    size_t total = 0;
    for (int i = 0; i < LCG_N_PARAM_TENSORS; i++) total += s[i];
    return total;
}

const char *lcg_config_check(const lcg_config *c) {
    static _Thread_local char msg[160];
    if (c->V < 2 || c->V > 1 << 20) snprintf(msg, sizeof msg, "vocabulary %d outside [2, 1048576]", c->V);
    else if (c->L < 1 || c->L > LCG_MAX_LAYERS) snprintf(msg, sizeof msg, "layers %d outside [1, %d]", c->L, LCG_MAX_LAYERS);
    else if (c->C < 2 || c->C > 8192) snprintf(msg, sizeof msg, "dim %d outside [2, 8192]", c->C);
    else if (c->H < 1 || c->H > LCG_MAX_HEADS) snprintf(msg, sizeof msg, "heads %d outside [1, %d]", c->H, LCG_MAX_HEADS);
    else if (c->D < 2 || c->D > 1024 || c->D % 2) snprintf(msg, sizeof msg, "head-dim %d must be even, in [2, 1024]", c->D);
    else if (c->F < 1 || c->F > 65536) snprintf(msg, sizeof msg, "ffn %d outside [1, 65536]", c->F);
    else if (!lcg_normalizer_at(c->norm)) snprintf(msg, sizeof msg, "unknown normalizer id %d", c->norm);
    else if (!lcg_posenc_at(c->pos)) snprintf(msg, sizeof msg, "unknown position encoding id %d", c->pos);
    else if (lcg_normalizer_at(c->norm)->has_alpha && !(c->alpha > 1.0f && c->alpha <= 2.0f))
        snprintf(msg, sizeof msg, "alpha %g outside (1, 2] for %s", (double)c->alpha, lcg_normalizer_at(c->norm)->name);
    else if (lcg_normalizer_at(c->norm)->has_topk &&
             !(c->alpha == (float)(int)c->alpha && fabsf(c->alpha) >= 1.0f && fabsf(c->alpha) <= (float)LCG_TOPK_MAX))
        snprintf(msg, sizeof msg, "topk parameter %g for %s: K must be an integer in [1, %d]", (double)c->alpha,
                 lcg_normalizer_at(c->norm)->name, LCG_TOPK_MAX);
    else if (!lcg_normalizer_at(c->norm)->has_alpha && !lcg_normalizer_at(c->norm)->has_topk &&
             c->alpha != (float)lcg_normalizer_at(c->norm)->alpha_def)
        snprintf(msg, sizeof msg, "alpha %g for %s, which has none", (double)c->alpha, lcg_normalizer_at(c->norm)->name);
    else msg[0] = '\0';
    return msg;
}

int lcg_config_same(const lcg_config *a, const lcg_config *b) {
    return a->V == b->V && a->L == b->L && a->C == b->C && a->H == b->H && a->D == b->D && a->F == b->F &&
           a->norm == b->norm && a->pos == b->pos && a->alpha == b->alpha;
}
