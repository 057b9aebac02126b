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
 * so a SIGKILL loses at most N steps. A checkpoint carries the optimizer and the data stream,
 * so a resumed run is bitwise the run that was never interrupted.
 *
 * Test hooks (environment, see util.h): LCG_TEST_STOP_AT=step:N stops the process after step
 * N; LCG_TEST_NAN=attn@N | grad@N | logits@N poisons step N (huge q/k weights of the last
 * layer, a NaN gradient in its FFN, an infinite LM-head weight) to exercise the detection.
 */
#define _POSIX_C_SOURCE 200809L
#include "run.h"
#include "data.h"
#include "sequence.h"
#include "../model/checkpoint.h"
#include "../model/optim.h"

#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

volatile sig_atomic_t lcg_stop_signal;

static void on_stop_signal(int sig) { lcg_stop_signal = sig; }

void lcg_catch_stop_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sa.sa_flags = SA_RESETHAND; /* the second ^C kills */
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
    uint64_t v[7] = {(uint64_t)st->step, st->rng.state, st->rng.inc, 0, (uint64_t)st->tail_n, (uint64_t)st->tokens, 0};
    memcpy(&v[3], &st->tail_loss, 8);
    memcpy(&v[6], &st->seconds, 8);
    memcpy(out, v, sizeof v);
}

int train_state_unpack(lcg_train_state *st, const unsigned char *in, size_t n, char *err, size_t err_len) {
    uint64_t v[7] = {0};
    if (n != LCG_TRAIN_STATE_BYTES && n != LCG_TRAIN_STATE_BYTES_OLD) {
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
                             .precision = cfg->precision};
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

static int save_state(lcg_backend *b, const lcg_train_state *st, const char *path, const char *note, char *err,
                      size_t err_len) {
    return train_checkpoint(b, st, 1, path, note, err, err_len);
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
    lcg_batch batch = {0};
    lcg_train_state st = {.step = 0, .rng = pcg32_derive(cfg->seed, "train", 0)};
    lcg_data_reader data;
    char err[768];
    if (cfg->data && data_open(&data, cfg->data, "train", err, sizeof err) != 0) lcg_die("%s", err);
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
    int tty = isatty(fileno(stderr)) && !cfg->quiet;
    long log_every = cfg->log_every > 0 ? cfg->log_every : (cfg->steps >= 10 ? cfg->steps / 10 : 1);
    long tail_from = cfg->steps - (cfg->steps + 9) / 10; /* last 10% of steps */
    double t0 = lcg_now(), last_draw = 0, seconds0 = st.seconds;
    long tokens0 = st.tokens, step0 = st.step;
    /* the wall time of earlier processes is known unless the state predates `seconds`; then
     * the CSV's wall_train_* describe this process alone */
    int whole = st.step == 0 || seconds0 > 0;
    int stopped = 0;

    for (long step = st.step; step < cfg->steps; step++) {
        lcg_train_state good = st; /* the state before this step: what a checkpoint keeps */
        if (!cfg->data) batch_fill(&batch, &cfg->task, &st.rng, cfg->batch, cfg->len, cfg->vary);
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
        char num[32];
        snprintf(num, sizeof num, "%ld", st.step);
        lcg_test_stop_point("step", num);
        if (lcg_stop_signal && st.step < cfg->steps) {
            stopped = lcg_stop_signal;
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
    if (!stopped && res->train_loss > 1.5 * uniform + 0.5)
        fprintf(stderr, "lcgbench run: warning: the final training loss %.3f is far above ln(vocabulary) = %.3f, "
                        "what a uniform guess loses: training diverged (try a lower --lr)\n",
                res->train_loss, uniform);
    res->steps_done = st.step;
    res->state = st;
    if (stopped) {
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
    if (cfg->data) data_close(&data);
    return stopped;
}
