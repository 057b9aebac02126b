/*
 * train.c: the training loop. Each step draws a batch of fresh samples from the task's
 * generator (stream "train"), or the next samples of a data directory's train split (--data),
 * runs forward/backward, clips the global gradient norm and takes
 * an AdamW step on the cosine-with-warmup schedule. A live progress line goes to a terminal,
 * plain log lines otherwise; --save writes the model and optimizer state at the end.
 *
 * Faults: every step's loss, activations and gradients are checked; the first non-finite
 * value stops the run naming the layer and step, after writing the last good state (the
 * parameters before that step) as a resumable checkpoint. SIGINT/SIGTERM finish the current
 * step, write a resumable checkpoint and return; --checkpoint-every writes one every N steps,
 * so a SIGKILL loses at most N steps. --stop-at N pauses the same way after step N of the
 * schedule (its validation done), without a signal. A checkpoint carries the optimizer and the
 * data stream, so a resumed run is bitwise the run that was never interrupted.
 *
 * Validation (--val-every N): every N steps the validation lengths are scored on their own
 * samples (stream "val", never the test samples) through the backend's evaluation, which
 * leaves the model and the data stream untouched (so the training is bitwise the same with or
 * without it), and the monitor's score (exact@512, bleu@256, ...) keeps a host copy of the
 * parameters when strictly better than every earlier one (loss: lower). The best is written
 * beside each resumable checkpoint (<ckpt>.best, atomically: a checkpoint whose step is the best
 * one's, the score in its state), so a resumed run keeps it. --log-csv writes the training
 * curve: every log step and validation step, the loss, lr, gradient norm, tokens/s, and the
 * validation scores when computed; a resumed run keeps the rows up to its checkpoint's step.
 * Validation time is not training time (tok/s and the wall columns exclude it).
 *
 * Test hooks (environment, see util.h): LCG_TEST_STOP_AT=step:N stops the process after step
 * N; LCG_TEST_NAN=attn@N | grad@N | logits@N poisons step N (huge q/k weights of the last
 * layer, a NaN gradient in its FFN, an infinite LM-head weight) to exercise the detection.
 */
#define _POSIX_C_SOURCE 200809L
#include "run.h"
#include "csv.h"
#include "data.h"
#include "sequence.h"
#include "../model/checkpoint.h"
#include "../model/optim.h"

#include <errno.h>
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

volatile sig_atomic_t lcg_stop_signal;

/* The first SIGINT/SIGTERM asks the run to stop at its next step (or rung) and keep a resumable
 * checkpoint; a second one kills, unless it comes within a second of the first: that is one
 * request delivered twice (timeout(1) signals its child, then the child's whole process group, so
 * `timeout 600 lcgbench ...` sends two SIGTERMs; the second killed runs mid-checkpoint). */
static struct timespec stop_signal_at;

static void on_stop_signal(int sig) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now); /* async-signal-safe (POSIX.1-2008) */
    if (!lcg_stop_signal) {
        stop_signal_at = now;
        lcg_stop_signal = sig;
        return;
    }
    double dt = (double)(now.tv_sec - stop_signal_at.tv_sec) + 1e-9 * (double)(now.tv_nsec - stop_signal_at.tv_nsec);
    if (dt < 1.0) return;
    signal(sig, SIG_DFL);
    raise(sig);
}

void lcg_catch_stop_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    /* Only the main thread takes them: OpenMP's workers block them (those created later inherit
     * the main thread's mask while it is blocked here). A signal taken by a worker could set the
     * flag just after the main thread had checked it, so a run stopped at step k would stop
     * at k + 1 (seen under a passive OpenMP wait policy). */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
#pragma omp parallel
    if (omp_get_thread_num() != 0) pthread_sigmask(SIG_BLOCK, &set, NULL);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

/* ---- the training state in a checkpoint --------------------------------------------------- */
void train_state_pack(const lcg_train_state *st, unsigned char out[LCG_TRAIN_STATE_BYTES]) {
    uint64_t v[11] = {(uint64_t)st->step, st->rng.state, st->rng.inc, 0, (uint64_t)st->tail_n, (uint64_t)st->tokens, 0,
                      (uint64_t)(st->val_pending != 0)};
    memcpy(&v[3], &st->tail_loss, 8);
    memcpy(&v[6], &st->seconds, 8);
    memcpy(&v[8], &st->loss, 8);
    memcpy(&v[9], &st->norm, 8);
    memcpy(&v[10], &st->tok_s, 8);
    _Static_assert(sizeof v == LCG_TRAIN_STATE_BYTES, "the training state's size");
    memcpy(out, v, sizeof v);
}

int train_state_unpack(lcg_train_state *st, const unsigned char *in, size_t n, char *err, size_t err_len) {
    uint64_t v[11] = {0};
    if (!train_state_size_ok(n)) {
        snprintf(err, err_len, "no training state (it can be evaluated with --load, not resumed)");
        return -1;
    }
    memcpy(v, in, n);
    st->step = (long)v[0];
    st->rng.state = v[1];
    st->rng.inc = v[2];
    memcpy(&st->tail_loss, &v[3], 8);
    st->tail_n = (long)v[4];
    st->tokens = (long)v[5];
    memcpy(&st->seconds, &v[6], 8);
    st->val_pending = (int)v[7];
    memcpy(&st->loss, &v[8], 8);
    memcpy(&st->norm, &v[9], 8);
    memcpy(&st->tok_s, &v[10], 8);
    if (v[7] > 1) {
        snprintf(err, err_len, "invalid training state");
        return -1;
    }
    if (st->step < 0 || st->tail_n < 0 || st->tail_n > st->step || st->tokens < 0 || !(st->rng.inc & 1) ||
        !isfinite(st->tail_loss) || !(st->seconds >= 0 && st->seconds < 1e12)) {
        snprintf(err, err_len, "invalid training state");
        return -1;
    }
    return 0;
}

static void fmt_eta(char *out, size_t n, double s) {
    if (!(s >= 0) || s > 1e7) s = 0;
    long t = (long)(s + 0.5);
    snprintf(out, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
}

lcg_backend *train_backend_create(const lcg_run_cfg *cfg) {
    lcg_backend_opts opts = {.beta1 = 0.9f, .beta2 = 0.99f, .eps = 1e-8f, .weight_decay = (float)cfg->weight_decay,
                             .precision = cfg->precision, .freeze_token0 = cfg->freeze_token0};
    const char *name = cfg->backend ? cfg->backend : "cpu";
    lcg_backend *b = lcg_backend_create(name, &cfg->model, cfg->seed, &opts);
    if (!b) lcg_die("no model backend '%s'", name);
    return b;
}

int train_checkpoint(lcg_backend *b, const lcg_train_state *st, int with_optimizer, const char *path,
                     const char *note, char *err, size_t err_len) {
    unsigned char blob[LCG_TRAIN_STATE_BYTES];
    train_state_pack(st, blob);
    size_t n = b->n_params;
    float *p = LCG_NEW(float, with_optimizer ? 3 * n : n), *m = with_optimizer ? p + n : NULL, *v = m ? m + n : NULL;
    long t;
    b->ops->get_params(b, p);
    if (with_optimizer) b->ops->get_optimizer(b, m, v, &t);
    int rc = checkpoint_write(path, &b->cfg, n, p, m, v, st->step, note, blob, sizeof blob, err, err_len);
    lcg_free(p);
    return rc;
}

void train_best_path(char *out, size_t n, const char *ckpt) { snprintf(out, n, "%s.best", ckpt); }

void train_result_free(lcg_train_result *r) {
    lcg_free(r->best_params);
    r->best_params = NULL;
    r->has_best = 0;
}

/* the best checkpoint so far (the training's, during train_run) */
int train_save_best(lcg_backend *b, const lcg_train_result *res, const char *ckpt, const char *note, char *err,
                    size_t err_len);
static const lcg_train_result *cur_best;

static int save_state(lcg_backend *b, const lcg_train_state *st, const char *path, const char *note, char *err,
                      size_t err_len) {
    int rc = train_checkpoint(b, st, 1, path, note, err, err_len);
    return rc == 0 && cur_best ? train_save_best(b, cur_best, path, note, err, err_len) : rc;
}

int train_save_best(lcg_backend *b, const lcg_train_result *res, const char *ckpt, const char *note, char *err,
                    size_t err_len) {
    if (!res->has_best) return 0;
    char bp[4200];
    train_best_path(bp, sizeof bp, ckpt);
    return checkpoint_write(bp, &b->cfg, b->n_params, res->best_params, NULL, NULL, res->best_step, note,
                            &res->best_score, sizeof res->best_score, err, err_len);
}

/* the best checkpoint kept beside `ckpt` if it belongs to this run (note) and is not past step */
static void load_best(lcg_train_result *res, const lcg_backend *b, const char *ckpt, const char *note, long step) {
    char bp[4200], err[768];
    train_best_path(bp, sizeof bp, ckpt);
    lcg_checkpoint ck;
    if (checkpoint_load(bp, &ck, err, sizeof err) != 0) return;
    if (strcmp(ck.note, note) == 0 && ck.n_params == b->n_params && ck.step <= step && ck.state_len == sizeof(double)) {
        res->best_params = LCG_NEW(float, b->n_params);
        memcpy(res->best_params, ck.params, sizeof(float) * b->n_params);
        memcpy(&res->best_score, ck.state, sizeof(double));
        res->best_step = ck.step;
        res->has_best = 1;
    }
    checkpoint_free(&ck);
}

const char *const lcg_monitor_names[4] = {"exact", "token", "bleu", "loss"};

static double monitor_value(const lcg_rung_result *r, int metric) {
    switch (metric) {
    case LCG_MON_EXACT: return (double)r->exact / r->samples;
    case LCG_MON_TOKEN: return (double)r->tokens_ok / (r->tokens ? r->tokens : 1);
    case LCG_MON_BLEU: return r->bleu;
    default: return r->loss;
    }
}

/* the training curve (--log-csv): one row per logged step, the run's id first (the key of its
 * rows in the results CSV) */

int lcg_curve_check(const char *path, uint64_t run_id, char *err, size_t n_err) {
    FILE *f = fopen(path, "r");
    if (!f) return 0; /* not there yet (an unreadable one fails when it is written) */
    char head[64] = "", row[64] = "";
    int have_head = fgets(head, sizeof head, f) != NULL, ch = 0;
    if (have_head && !strchr(head, '\n'))
        while ((ch = getc(f)) != EOF && ch != '\n') {} /* the rest of a long header */
    int have_row = have_head && fgets(row, sizeof row, f) != NULL;
    fclose(f);
    if (!have_head || (!have_row && strncmp(head, "run_id,step,", 12) == 0)) return 0; /* empty, or a header alone */
    char id[24];
    snprintf(id, sizeof id, "%016llx,", (unsigned long long)run_id);
    if (strncmp(head, "run_id,step,", 12) == 0 && strncmp(row, id, strlen(id)) == 0) return 0; /* this run's */
    const char *whose = strncmp(head, "run_id,", 7) != 0 ? "a file that is not an lcgbench training curve (or one "
                                                           "from before curves carried run ids)"
                                                         : "another run's training curve";
    snprintf(err, n_err, "--log-csv '%s' is %s; this run (%016llx) does not overwrite it: remove it or name another "
             "file (put {run_id} in --log-csv)", path, whose, (unsigned long long)run_id);
    return -1;
}
typedef struct {
    FILE *f;
    int bleu;
    unsigned long long id; /* run_cfg_id */
} curve_log;

static void curve_open(curve_log *lg, const lcg_run_cfg *cfg, long keep_to) {
    memset(lg, 0, sizeof *lg);
    if (!cfg->log_csv) return;
    lg->bleu = lcg_run_bleu(cfg);
    lg->id = (unsigned long long)run_cfg_id(cfg);
    size_t n = 0;
    char *old = keep_to > 0 ? lcg_read_file(cfg->log_csv, &n) : NULL;
    csv_mkdirs_for(cfg->log_csv);
    lg->f = fopen(cfg->log_csv, "w");
    if (!lg->f) lcg_die("cannot write '%s': %s", cfg->log_csv, strerror(errno));
    fprintf(lg->f, "run_id,step,loss,lr,grad_norm,tok_s");
    for (int i = 0; i < cfg->n_val_lens; i++) {
        int L = cfg->val_lens[i];
        fprintf(lg->f, ",exact@%d,token@%d,loss@%d", L, L, L);
        if (lg->bleu) fprintf(lg->f, ",bleu@%d", L);
    }
    fprintf(lg->f, "\n");
    /* a resumed run: the rows of the steps up to its checkpoint, as they were (this run's:
     * lcg_curve_check vouched for the file) */
    for (char *line = old ? strchr(old, '\n') : NULL; line && line[1];) {
        char *next = strchr(line + 1, '\n'), *comma = strchr(line + 1, ',');
        if (!next) break;
        if (comma && comma < next && atol(comma + 1) <= keep_to) fwrite(line + 1, 1, (size_t)(next - line), lg->f);
        line = next;
    }
    free(old);
    fflush(lg->f);
}

static void curve_row(curve_log *lg, const lcg_run_cfg *cfg, long step, double loss, double lr, double norm, double tps,
                      const lcg_rung_result *val) {
    if (!lg->f) return;
    fprintf(lg->f, "%016llx,%ld,%.6g,%.6g,%.6g,%.0f", lg->id, step, loss, lr, norm, tps);
    for (int i = 0; i < cfg->n_val_lens; i++) {
        if (val) fprintf(lg->f, ",%.6f,%.6f,%.6g", monitor_value(&val[i], LCG_MON_EXACT),
                         monitor_value(&val[i], LCG_MON_TOKEN), val[i].loss);
        else fprintf(lg->f, ",,,");
        if (lg->bleu) {
            if (val) fprintf(lg->f, ",%.6f", val[i].bleu);
            else fprintf(lg->f, ",");
        }
    }
    fprintf(lg->f, "\n");
    if (fflush(lg->f) != 0) lcg_die("cannot write '%s': %s", cfg->log_csv, strerror(errno));
}

/* scores the validation lengths into val; 0, or -1 when a signal cut it short. A strictly
 * better monitor score keeps the parameters as the best checkpoint */
static int validate(lcg_backend *b, const lcg_run_cfg *cfg, long step, lcg_train_result *res, lcg_rung_result *val) {
    for (int i = 0; i < cfg->n_val_lens; i++)
        if (eval_rung_val(&val[i], b, cfg, cfg->val_lens[i]) != 0) return -1;
    double score = NAN;
    for (int i = 0; i < cfg->n_val_lens; i++)
        if (cfg->val_lens[i] == cfg->mon_len) score = monitor_value(&val[i], cfg->mon_metric);
    int better = !res->has_best || (cfg->mon_metric == LCG_MON_LOSS ? score < res->best_score : score > res->best_score);
    if (!cfg->quiet)
        fprintf(stderr, "validation at step %ld: %s@%d %.4f%s\n", step, lcg_monitor_names[cfg->mon_metric], cfg->mon_len,
                score, better ? " (best)" : "");
    if (better && isfinite(score)) {
        if (!res->best_params) res->best_params = LCG_NEW(float, b->n_params);
        b->ops->get_params(b, res->best_params);
        res->best_score = score;
        res->best_step = step;
        res->has_best = 1;
    }
    return 0;
}

/* the test hook LCG_TEST_NAN=what@step: the fault to inject before step `step` (0-based) runs,
 * or 0. A transient fault: undone before the last good state is saved */
static int fault_at(long step) {
    static int parsed, kind;
    static long at = -1;
    if (!parsed) {
        char what[16];
        parsed = 1;
        const char *e = getenv("LCG_TEST_NAN");
        if (e && sscanf(e, "%15[a-z]@%ld", what, &at) != 2) at = -1;
        kind = at < 0 ? 0 : strcmp(what, "attn") == 0 ? LCG_FAULT_ATTN : strcmp(what, "logits") == 0 ? LCG_FAULT_LOGITS
             : strcmp(what, "grad") == 0 ? LCG_FAULT_GRAD : 0;
    }
    return step + 1 == at ? kind : 0;
}

/* non-finite values at `step` (0-based): write the last good state and exit 1, one line */
static _Noreturn void die_nonfinite(lcg_backend *b, const lcg_train_state *good, const lcg_run_cfg *cfg,
                                    const char *note, const char *what, long step, double loss) {
    char err[768], saved[900];
    b->ops->fault_undo(b);
    float *p = LCG_NEW(float, b->n_params);
    b->ops->get_params(b, p);
    size_t bad = 0;
    while (bad < b->n_params && isfinite(p[bad])) bad++;
    lcg_free(p);
    if (bad < b->n_params) snprintf(saved, sizeof saved, "no checkpoint written (the parameters are not finite)");
    else if (good->step == 0) snprintf(saved, sizeof saved, "no checkpoint written (nothing trained yet)");
    else if (save_state(b, good, cfg->ckpt, note, err, sizeof err) != 0)
        snprintf(saved, sizeof saved, "the last good state could not be saved: %s", err);
    else snprintf(saved, sizeof saved, "last good checkpoint (step %ld) written to '%s'", good->step, cfg->ckpt);
    fprintf(stderr, "lcgbench run: non-finite values in %s at step %ld (loss %g); %s\n", what, step + 1, loss, saved);
    exit(1);
}

int train_run(lcg_backend *b, lcg_train_result *res, const lcg_run_cfg *cfg, const char *note,
              const lcg_checkpoint *resume) {
    res->has_best = 0;
    res->best_params = NULL;
    cur_best = res;
    lcg_batch batch = {0};
    lcg_train_state st = {.step = 0, .rng = pcg32_derive(cfg->seed, "train", 0)};
    lcg_data_reader data;
    char err[768];
    if (cfg->data && data_open(&data, cfg->data, "train", err, sizeof err) != 0) lcg_die("%s", err);
    lcg_task_cfg train_task; /* the training split's task (mqmtar split-vocab 1: its own vocabulary) */
    lcg_task_split(&train_task, &cfg->task, cfg->seed, "train", 0);
    if (resume) { /* the parameters are in b already; the optimizer and the data stream follow */
        if (train_state_unpack(&st, resume->state, resume->state_len, err, sizeof err) != 0)
            lcg_die("checkpoint '%s': %s", cfg->resume, err);
        if (st.step > cfg->steps) lcg_die("checkpoint '%s' is at step %ld, past --steps %ld", cfg->resume, st.step, cfg->steps);
        if (st.step < cfg->steps && !resume->opt_m)
            lcg_die("checkpoint '%s' has no optimizer state to resume training from", cfg->resume);
        b->ops->set_optimizer(b, resume->opt_m, resume->opt_v, st.step);
        for (long k = 0; cfg->data && k < st.step * cfg->batch; k++) { /* the file position */
            const int *s, *t;
            int a, b;
            if (data_next_cyclic(&data, &cfg->task, &s, &a, &t, &b, err, sizeof err) != 0) lcg_die("%s", err);
        }
    }
    if (resume && cfg->val_every) load_best(res, b, cfg->resume, note, st.step);
    curve_log curve;
    curve_open(&curve, cfg, st.step);
    lcg_rung_result *val = cfg->val_every ? LCG_NEW(lcg_rung_result, cfg->n_val_lens) : NULL;
    int tty = isatty(fileno(stderr)) && !cfg->quiet;
    int stopped = 0;
    if (cfg->val_every && st.val_pending) { /* the validation a signal cut short at the checkpoint's step */
        if (validate(b, cfg, st.step, res, val) != 0) stopped = lcg_stop_signal;
        else {
            st.val_pending = 0;
            double lr = (float)(cfg->lr * lr_cosine(st.step - 1, cfg->warmup, cfg->steps));
            curve_row(&curve, cfg, st.step, st.loss, lr, st.norm, st.tok_s, val);
        }
    }
    long log_every = cfg->log_every > 0 ? cfg->log_every : (cfg->steps >= 10 ? cfg->steps / 10 : 1);
    long tail_from = cfg->steps - (cfg->steps + 9) / 10; /* last 10% of steps */
    double t0 = lcg_now(), last_draw = 0, seconds0 = st.seconds;
    long tokens0 = st.tokens, step0 = st.step;
    /* the wall time of earlier processes is known unless the state predates `seconds`; then
     * the CSV's wall_train_* describe this process alone */
    int whole = st.step == 0 || seconds0 > 0;

    /* --stop-at: a run resumed at or past that step trains nothing and pauses again */
    int paused = !stopped && cfg->stop_at && st.step >= cfg->stop_at && st.step < cfg->steps;
    for (long step = st.step; step < cfg->steps && !stopped && !paused; step++) {
        lcg_train_state good = st; /* the state before this step: what a checkpoint keeps */
        if (!cfg->data) batch_fill(&batch, &train_task, &st.rng, cfg->batch, cfg->len, cfg->vary);
        else if (batch_fill_data(&batch, &cfg->task, &data, cfg->batch, err, sizeof err) != 0) lcg_die("%s", err);
        int fault = fault_at(step);
        if (fault) b->ops->fault(b, fault);
        double loss = b->ops->forward_backward(b, batch.tok, batch.tgt, batch.mask, batch.B, batch.T);
        if (!isfinite(loss)) {
            char what[160];
            if (b->ops->find_nonfinite(b, what, sizeof what) < 0) snprintf(what, sizeof what, "the loss");
            die_nonfinite(b, &good, cfg, note, what, step, loss);
        }
        float lr = (float)(cfg->lr * lr_cosine(step, cfg->warmup, cfg->steps));
        double norm = b->ops->optimizer_step(b, cfg->clip, lr);
        if (!isfinite(norm)) {
            char what[160];
            if (!b->ops->find_nonfinite_grad(b, what, sizeof what)) snprintf(what, sizeof what, "the gradients");
            die_nonfinite(b, &good, cfg, note, what, step, loss);
        }
        st.tokens += batch.n_real;
        if (step >= tail_from) {
            st.tail_loss += loss;
            st.tail_n++;
        }
        st.step = step + 1;
        double now = lcg_now(), el = now - t0;
        if (whole) st.seconds = seconds0 + el;
        double tps = (st.tokens - tokens0) / (el > 0 ? el : 1e-9);
        char eta[32];
        fmt_eta(eta, sizeof eta, el / (step + 1 - step0) * (cfg->steps - step - 1));
        if (tty && (now - last_draw > 0.1 || step + 1 == cfg->steps)) {
            fprintf(stderr, "\r\033[Kstep %ld/%ld  loss %.4f  lr %.2e  %.1fk tok/s  ETA %s", step + 1,
                    cfg->steps, loss, (double)lr, tps / 1e3, eta);
            fflush(stderr);
            last_draw = now;
        } else if (!tty && !cfg->quiet && ((step + 1) % log_every == 0 || step + 1 == cfg->steps)) {
            fprintf(stderr, "step %ld/%ld loss %.4f lr %.2e tok/s %.0f eta %s\n", step + 1,
                    cfg->steps, loss, (double)lr, tps, eta);
        }
        st.loss = loss;
        st.norm = norm;
        st.tok_s = tps;
        int do_val = cfg->val_every && st.step % cfg->val_every == 0;
        if (do_val) { /* not training time: the clock skips it */
            double v0 = lcg_now();
            if (tty) fprintf(stderr, "\n");
            if (validate(b, cfg, st.step, res, val) != 0) st.val_pending = 1; /* a signal: stopped below */
            t0 += lcg_now() - v0;
        }
        /* a cut validation's row is written by the resumed run, which does it */
        if (!st.val_pending && (do_val || (st.step % log_every == 0) || st.step == cfg->steps))
            curve_row(&curve, cfg, st.step, loss, lr, norm, tps, do_val ? val : NULL);
        char num[32];
        snprintf(num, sizeof num, "%ld", st.step);
        lcg_test_stop_point("step", num);
        if (lcg_stop_signal && (st.step < cfg->steps || st.val_pending)) {
            stopped = lcg_stop_signal;
            break;
        }
        if (st.step == cfg->stop_at && st.step < cfg->steps) { /* after its validation, if any */
            paused = 1;
            break;
        }
        if (cfg->ckpt_every > 0 && st.step % cfg->ckpt_every == 0 && st.step < cfg->steps &&
            save_state(b, &st, cfg->ckpt, note, err, sizeof err) != 0)
            lcg_die("%s", err);
    }
    if (tty) fprintf(stderr, "\n");
    double seg = lcg_now() - t0;
    if (whole) st.seconds = seconds0 + seg;
    res->train_seconds = whole ? st.seconds : seg;
    res->train_tok_s = (whole ? st.tokens : st.tokens - tokens0) / (res->train_seconds > 0 ? res->train_seconds : 1e-9);
    res->train_loss = st.tail_n ? st.tail_loss / st.tail_n : NAN;
    /* a uniform guess over the vocabulary loses ln V: far above it, training went wrong */
    double uniform = log((double)cfg->model.V);
    if (!stopped && !paused && res->train_loss > 1.5 * uniform + 0.5)
        fprintf(stderr, "lcgbench run: warning: the final training loss %.3f is far above ln(vocabulary) = %.3f, "
                        "what a uniform guess loses: training diverged (try a lower --lr)\n",
                res->train_loss, uniform);
    res->steps_done = st.step;
    res->paused = paused;
    res->state = st;
    if (paused) {
        if (save_state(b, &st, cfg->ckpt, note, err, sizeof err) != 0) lcg_die("%s", err);
        char cmd[4096];
        if (cfg->auto_resume) snprintf(cmd, sizeof cmd, " (the sweep, run again without it, continues from it)");
        else {
            char resume[4000];
            run_resume_command(cfg, cfg->ckpt, resume, sizeof resume);
            snprintf(cmd, sizeof cmd, "; continue with '%s'", resume);
        }
        fprintf(stderr, "lcgbench run: paused at step %ld/%ld (--stop-at %ld); checkpoint written to '%s'%s\n", st.step,
                cfg->steps, cfg->stop_at, cfg->ckpt, cmd);
    } else if (stopped) {
        if (save_state(b, &st, cfg->ckpt, note, err, sizeof err) != 0) lcg_die("%s", err);
        if (cfg->auto_resume)
            fprintf(stderr, "lcgbench run: %s at step %ld/%ld; checkpoint written to '%s' (the sweep, run "
                            "again, continues from it)\n",
                    stopped == SIGINT ? "interrupted" : "terminated", st.step, cfg->steps, cfg->ckpt);
        else {
            char cmd[4096];
            run_resume_command(cfg, cfg->ckpt, cmd, sizeof cmd);
            fprintf(stderr, "lcgbench run: %s at step %ld/%ld; checkpoint written to '%s'; continue with '%s'\n",
                    stopped == SIGINT ? "interrupted" : "terminated", st.step, cfg->steps, cfg->ckpt, cmd);
        }
    } else if (cfg->save && save_state(b, &st, cfg->save, note, err, sizeof err) != 0) {
        lcg_die("%s", err);
    }
    batch_free(&batch);
    lcg_task_split_release(&train_task, &cfg->task);
    if (cfg->data) data_close(&data);
    if (curve.f && fclose(curve.f) != 0) lcg_die("cannot write '%s': %s", cfg->log_csv, strerror(errno));
    lcg_free(val);
    cur_best = NULL;
    return stopped;
}
