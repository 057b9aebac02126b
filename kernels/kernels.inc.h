/*
 * kernels.inc.h: prototypes of the forward/backward kernels for one scalar type. Included
 * twice by kernels.h (LCG_REAL = float with plain names, = double with `_f64` names).
 *
 * Conventions (llm.c style): outputs first, then saved buffers, then inputs, then sizes.
 * Every backward ACCUMULATES (+=) into its gradient outputs; callers zero them once per step.
 * Dimension letters: B batch, T time, C model width, H heads, D head dim, F FFN width,
 * V vocabulary, N = B*T rows, IC/OC matmul in/out features.
 */

/* embedding, scaled by sqrt(C): out[n] = emb[tok[n]] * sqrt(C) */
void KFN(encoder_forward)(LCG_REAL *out /* N,C */, const int *tok /* N */,
                          const LCG_REAL *emb /* V,C */, int N, int C);
void KFN(encoder_backward)(LCG_REAL *demb /* V,C */, const LCG_REAL *dout /* N,C */,
                           const int *tok /* N */, int N, int C);

/* RMSNorm with (1 + w): out = x / sqrt(mean(x^2) + eps) * (1 + w) */
void KFN(rmsnorm_forward)(LCG_REAL *out /* N,C */, LCG_REAL *rstd /* N */,
                          const LCG_REAL *inp /* N,C */, const LCG_REAL *w /* C */, int N, int C);
void KFN(rmsnorm_backward)(LCG_REAL *dinp /* N,C */, LCG_REAL *dw /* C */,
                           const LCG_REAL *dout /* N,C */, const LCG_REAL *inp /* N,C */,
                           const LCG_REAL *w /* C */, const LCG_REAL *rstd /* N */, int N, int C);

/* out = inp @ w (w stored input-major). _ref is the plain triple loop the fast path is tested
 * against. */
void KFN(matmul_forward)(LCG_REAL *out /* N,OC */, const LCG_REAL *inp /* N,IC */,
                         const LCG_REAL *w /* IC,OC */, int N, int IC, int OC);
void KFN(matmul_forward_ref)(LCG_REAL *out /* N,OC */, const LCG_REAL *inp /* N,IC */,
                             const LCG_REAL *w /* IC,OC */, int N, int IC, int OC);
void KFN(matmul_backward)(LCG_REAL *dinp /* N,IC */, LCG_REAL *dw /* IC,OC */,
                          const LCG_REAL *dout /* N,OC */, const LCG_REAL *inp /* N,IC */,
                          const LCG_REAL *w /* IC,OC */, int N, int IC, int OC);
void KFN(matmul_backward_ref)(LCG_REAL *dinp /* N,IC */, LCG_REAL *dw /* IC,OC */,
                              const LCG_REAL *dout /* N,OC */, const LCG_REAL *inp /* N,IC */,
                              const LCG_REAL *w /* IC,OC */, int N, int IC, int OC);

/* GeGLU with tanh-GELU: out = gelu_tanh(gu[:, :F]) * gu[:, F:] */
void KFN(geglu_forward)(LCG_REAL *out /* N,F */, const LCG_REAL *gu /* N,2F */, int N, int F);
void KFN(geglu_backward)(LCG_REAL *dgu /* N,2F */, const LCG_REAL *dout /* N,F */,
                         const LCG_REAL *gu /* N,2F */, int N, int F);

/* RoPE (rotate-half, theta 10000, full head dim) on the q and k parts of qkv, in place.
 * Position of row (b, t) is t. Backward rotates the gradient back, in place. */
void KFN(rope_forward)(LCG_REAL *qkv /* B,T,3*H*D */, int B, int T, int H, int D);
void KFN(rope_backward)(LCG_REAL *dqkv /* B,T,3*H*D */, int B, int T, int H, int D);
/* one token at position pos: rotates x[H*D] in place */
void KFN(rope_rotate)(LCG_REAL *x /* H*D */, int pos, int H, int D);

/* causal multi-head attention on a materialized T x T probability block (training only; T is
 * the short training length). s_ij = c_ih * q_i.k_j/sqrt(D) + slope_h*(j-i),
 * p_i = row(s_i,0..i); c = qscale (the length scaling, lenscale.c) or 1 when qscale is NULL.
 * `row` is LCG_ROW_*. The backward also writes dqscale (+=) when both are non-NULL. */
void KFN(attention_forward)(LCG_REAL *out /* B,T,H*D */, LCG_REAL *att /* B,H,T,T */,
                            const LCG_REAL *qkv /* B,T,3*H*D */, const LCG_REAL *qscale /* B,T,H */,
                            const float *slopes /* H */, int row, double alpha, int B, int T, int H,
                            int D);
void KFN(attention_backward)(LCG_REAL *dqkv /* B,T,3*H*D */, LCG_REAL *dqscale /* B,T,H */,
                             const LCG_REAL *dout /* B,T,H*D */, const LCG_REAL *qkv /* B,T,3*H*D */,
                             const LCG_REAL *qscale /* B,T,H */, const LCG_REAL *att /* B,H,T,T */,
                             const float *slopes /* H */, int row, double alpha,
                             int B, int T, int H, int D);

/* length scaling of the queries (lenscale.c). Row n is at position pos0 + n % T. Only the
 * tensors of `kind` are read: beta (ssmax, learn), gamma (learn), wb, bb, wg, bg (adapt). */
typedef struct {
    LCG_REAL *beta;  /* Hs */
    LCG_REAL *gamma; /* Hs */
    LCG_REAL *wb;    /* C, Hs */
    LCG_REAL *bb;    /* Hs */
    LCG_REAL *wg;    /* C, Hs */
    LCG_REAL *bg;    /* Hs */
} KFN(lcg_lenscale_w);
void KFN(lenscale_forward)(LCG_REAL *c /* N,H */, const LCG_REAL *a /* N,C */,
                           const KFN(lcg_lenscale_w) *w, int kind, int h0, int N, int T, int pos0,
                           int C, int H);
void KFN(lenscale_backward)(LCG_REAL *da /* N,C */, KFN(lcg_lenscale_w) *g, const LCG_REAL *dc /* N,H */,
                            const LCG_REAL *a /* N,C */, const KFN(lcg_lenscale_w) *w, int kind,
                            int h0, int N, int T, int pos0, int C, int H);

/* attention normalizers on one row of n scores: the row function `row` (LCG_ROW_*, dispatched
 * through registry.c's row table) at the normalizer's alpha */
void KFN(norm_row_forward)(LCG_REAL *p /* n */, const LCG_REAL *s /* n */, int n, int norm,
                           double alpha);
void KFN(norm_row_backward)(LCG_REAL *ds /* n */, const LCG_REAL *p /* n */,
                            const LCG_REAL *dp /* n */, int n, int norm, double alpha);
/* the same for any row function, given the row's scores s too (the rows with bwd_s need them;
 * the others ignore s) */
void KFN(norm_row_backward_s)(LCG_REAL *ds /* n */, const LCG_REAL *p /* n */, const LCG_REAL *dp /* n */,
                              const LCG_REAL *s /* n */, int n, int norm, double alpha);

/* alpha-entmax and sparsemax rows (entmax.c), 1 < alpha <= 2. Each forward works on
 * x = (alpha-1)(s - max s), writes p (sums to 1, exact zeros off the support) and returns the
 * threshold tau in that shifted domain: p_j = 0 wherever x_j <= tau. entmax_row is the fast exact
 * path (closed form for alpha = 1.5 and 2, Newton otherwise); entmax_bisect_row is the plain
 * bisection reference (n_iter halvings of [-1, -n^(1-alpha)], 80 reach double precision).
 * The backward writes (does not accumulate) ds = u (g - sum(u g)/sum(u)), u = p^(2-alpha) on
 * p > 0. */
double KFN(entmax_row)(LCG_REAL *p /* n */, const LCG_REAL *s /* n */, int n, double alpha);
/* the sort-based closed-form threshold alone (alpha 1.5 or 2), without entmax_row's check and
 * fallback, so the tests can hold it to the bisection reference */
double KFN(entmax_closed_form_tau)(const LCG_REAL *s /* n */, int n, double alpha);
double KFN(entmax_bisect_row)(LCG_REAL *p /* n */, const LCG_REAL *s /* n */, int n, double alpha,
                              int n_iter);
/* the solve of entmax_row on its candidates: cd[*m] are the keys with x > -1 of a row of n
 * keys, in any order. Prunes them to the top-8 bound, solves tau, and leaves in cd[0..*m) the
 * kept keys (a superset of the support), in their input order or, when the closed form ran
 * (alpha 1.5, 2 and at most 64 keys left), sorted by x descending, with x replaced by the
 * weight p (zero at or below tau; the weights sum to 1). Returns tau. */
double KFN(entmax_cand_solve)(lcg_ent_cand *cd /* m */, int *m, int n, double alpha);
/* the evaluation's solve (decoder_step, decoder_prefill): as entmax_cand_solve, but its result
 * (tau, the support and its weights) is the same bits for ANY set of keys that contains every
 * key above tau (x > tau), whatever else it holds: the closed form's scan stops where the
 * support ends (alpha 1.5, 2), else Newton again on the support alone. So callers may prune
 * with any safe bound. cd[0..*m) are left sorted by x descending (closed form) or in input
 * order, holding the weights. */
double KFN(entmax_support_solve)(lcg_ent_cand *cd /* m */, int *m, int n, double alpha);
/* entmax_row through entmax_support_solve: the evaluation's row (decoder_step) */
double KFN(entmax_row_eval)(LCG_REAL *p /* n */, const LCG_REAL *s /* n */, int n, double alpha);
double KFN(sparsemax_row)(LCG_REAL *p /* n */, const LCG_REAL *s /* n */, int n);
/* the row table's entries (registry.c): softmax (attention.c), and the entmax rows in the
 * table's signature (entmax.c) */
void KFN(softmax_row)(LCG_REAL *p /* n */, const LCG_REAL *s /* n */, int n, double alpha);
void KFN(softmax_row_backward)(LCG_REAL *ds /* n */, const LCG_REAL *p /* n */, const LCG_REAL *dp /* n */, int n,
                               double alpha);
void KFN(entmax_row_fwd)(LCG_REAL *p /* n */, const LCG_REAL *s /* n */, int n, double alpha);
void KFN(sparsemax_row_fwd)(LCG_REAL *p /* n */, const LCG_REAL *s /* n */, int n, double alpha);
void KFN(entmax_row_eval_fwd)(LCG_REAL *p /* n */, const LCG_REAL *s /* n */, int n, double alpha);
void KFN(entmax_row_backward)(LCG_REAL *ds /* n */, const LCG_REAL *p /* n */,
                              const LCG_REAL *g /* n */, int n, double alpha);

/* top-k, stick-breaking and adaptive-temperature softmax rows (topk.c, stickbreak.c,
 * adaptive.c; the definitions are atop each file). topk_row's parameter is +K (k = K) or -K
 * (k = max(K, n/2)); topk_row_k is that k. The backwards of stick-break and adaptive-softmax
 * take the row's scores; top-k's is softmax_row_backward. adaptive_softmax_beta is a row's
 * temperature. */
void KFN(topk_row)(LCG_REAL *p /* n */, const LCG_REAL *s /* n */, int n, double param);
int KFN(topk_row_k)(double param, int n);
void KFN(stickbreak_row)(LCG_REAL *p /* n */, const LCG_REAL *s /* n */, int n, double alpha);
void KFN(stickbreak_row_backward)(LCG_REAL *ds /* n */, const LCG_REAL *p /* n */, const LCG_REAL *g /* n */,
                                  const LCG_REAL *s /* n */, int n, double alpha);
void KFN(adaptive_softmax_row)(LCG_REAL *p /* n */, const LCG_REAL *s /* n */, int n, double alpha);
void KFN(adaptive_softmax_row_backward)(LCG_REAL *ds /* n */, const LCG_REAL *p /* n */, const LCG_REAL *g /* n */,
                                        const LCG_REAL *s /* n */, int n, double alpha);
double KFN(adaptive_softmax_beta)(const LCG_REAL *s /* n */, int n);

/* masked softmax cross-entropy. losses[n] = -log softmax(logits[n])[target[n]] where
 * mask[n], else 0. Backward writes dlogits = (softmax - onehot) * scale on masked rows. */
void KFN(crossentropy_forward)(LCG_REAL *losses /* N */, const LCG_REAL *logits /* N,V */,
                               const int *targets /* N */, const unsigned char *mask /* N */,
                               int N, int V);
void KFN(crossentropy_backward)(LCG_REAL *dlogits /* N,V */, const LCG_REAL *logits /* N,V */,
                                const int *targets /* N */, const unsigned char *mask /* N */,
                                LCG_REAL scale, int N, int V);
