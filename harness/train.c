/*
 * train.c: the training loop. Each step draws a batch of fresh samples from the task's
 * generator (stream "train"), or the next samples of a data directory's train split (--data),
 * runs forward/backward, clips the global gradient norm and takes
 * an AdamW step on the cosine-with-warmup schedule. A live progress line goes to a terminal,
 * plain log lines otherwise; --save writes the model and optimizer state at the end. A non-finite loss or gradient stops the run with the step named.
 */
#include "run.h"
#include "../model/checkpoint.h"
#include "../model/optim.h"

#include <math.h>
#include <stdio.h>
#include <unistd.h>

static void fmt_eta(char *out, size_t n, double s) {
    if (!(s >= 0) || s > 1e7) s = 0;
    long t = (long)(s + 0.5);
    snprintf(out, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
}

void train_run(lcg_model *m, lcg_train_result *res, const lcg_run_cfg *cfg, const char *note) {
    lcg_adamw opt;
    adamw_init(&opt, m->n_params, 0.9f, 0.99f, 1e-8f, (float)cfg->weight_decay);
    lcg_batch batch = {0};
    pcg32 rng = pcg32_derive(cfg->seed, "train", 0);
    lcg_data_reader data;
    char err[600];
    if (cfg->data && data_open(&data, cfg->data, "train", err, sizeof err) != 0) lcg_die("%s", err);
    int tty = isatty(fileno(stderr)) && !cfg->quiet;
    long log_every = cfg->log_every > 0 ? cfg->log_every : (cfg->steps >= 10 ? cfg->steps / 10 : 1);
    long tail_from = cfg->steps - (cfg->steps + 9) / 10; /* last 10% of steps */
    double tail_loss = 0, t0 = lcg_now(), last_draw = 0;
    long tail_n = 0, tokens = 0;

    for (long step = 0; step < cfg->steps; step++) {
        if (!cfg->data) batch_fill(&batch, &cfg->task, &rng, cfg->batch, cfg->len, cfg->vary);
        else if (batch_fill_data(&batch, &cfg->task, &data, cfg->batch, err, sizeof err) != 0) lcg_die("%s", err);
        double loss = model_forward(m, batch.tok, batch.tgt, batch.mask, batch.B, batch.T);
        if (!isfinite(loss)) {
            char what[160];
            if (model_find_nonfinite(m, what, sizeof what) < 0) snprintf(what, sizeof what, "the loss");
            lcg_die("non-finite values in %s at step %ld (loss %g)", what, step + 1, loss);
        }
        model_zero_grad(m);
        model_backward(m);
        double norm = grad_clip(m->grads_mem, m->n_params, cfg->clip);
        if (!isfinite(norm)) {
            int t = 0;
            for (size_t i = 0, off = 0; i < LCG_N_PARAM_TENSORS; off += m->sizes[i++])
                if (!isfinite(grad_norm(m->grads_mem + off, m->sizes[i]))) {
                    t = (int)i;
                    break;
                }
            lcg_die("non-finite gradient of %s at step %ld", lcg_param_names[t], step + 1);
        }
        float lr = (float)(cfg->lr * lr_cosine(step, cfg->warmup, cfg->steps));
        adamw_update(&opt, m->params_mem, m->grads_mem, lr);
        tokens += batch.n_real;
        if (step >= tail_from) {
            tail_loss += loss;
            tail_n++;
        }
        double now = lcg_now(), el = now - t0;
        double tps = tokens / (el > 0 ? el : 1e-9);
        char eta[32];
        fmt_eta(eta, sizeof eta, el / (step + 1) * (cfg->steps - step - 1));
        if (tty && (now - last_draw > 0.1 || step + 1 == cfg->steps)) {
            fprintf(stderr, "\r\033[Kstep %ld/%ld  loss %.4f  lr %.2e  %.1fk tok/s  ETA %s", step + 1,
                    cfg->steps, loss, (double)lr, tps / 1e3, eta);
            fflush(stderr);
            last_draw = now;
        } else if (!tty && !cfg->quiet && ((step + 1) % log_every == 0 || step + 1 == cfg->steps)) {
            fprintf(stderr, "step %ld/%ld loss %.4f lr %.2e tok/s %.0f eta %s\n", step + 1,
                    cfg->steps, loss, (double)lr, tps, eta);
        }
    }
    if (tty) fprintf(stderr, "\n");
    res->train_seconds = lcg_now() - t0;
    res->train_tok_s = tokens / (res->train_seconds > 0 ? res->train_seconds : 1e-9);
    res->train_loss = tail_n ? tail_loss / tail_n : NAN;
    res->steps_done = cfg->steps;
    if (cfg->save) {
        if (checkpoint_save(cfg->save, m, &opt, cfg->steps, note, err, sizeof err) != 0)
            lcg_die("%s", err);
    }
    batch_free(&batch);
    adamw_free(&opt);
    if (cfg->data) data_close(&data);
}
