/* model.inc.h: the model's types and functions for one scalar type (see model.h). */

typedef struct {
    LCG_REAL *t[LCG_N_PARAM_TENSORS]; /* pointers into one contiguous block, in enum order */
} KFN(lcg_params);

/* saved activations of one training forward, for a [B, T] batch (one allocation) */
typedef struct {
    LCG_REAL *enc;     /* B,T,C */
    LCG_REAL *ln_in;   /* L,B,T,C */
    LCG_REAL *rs_in;   /* L,B,T */
    LCG_REAL *qkv;     /* L,B,T,3HD (after RoPE) */
    LCG_REAL *atty;    /* L,B,T,HD */
    LCG_REAL *att;     /* L,B,H,T,T */
    LCG_REAL *qs;      /* L,B,T,H  length scale of each query (1 when unscaled) */
    LCG_REAL *ao;      /* L,B,T,C */
    LCG_REAL *rs_pa;   /* L,B,T */
    LCG_REAL *res1;    /* L,B,T,C  residual after attention */
    LCG_REAL *ln_pf;   /* L,B,T,C */
    LCG_REAL *rs_pf;   /* L,B,T */
    LCG_REAL *gu;      /* L,B,T,2F */
    LCG_REAL *ff;      /* L,B,T,F */
    LCG_REAL *mo;      /* L,B,T,C */
    LCG_REAL *rs_po;   /* L,B,T */
    LCG_REAL *res2;    /* L,B,T,C  residual after the FFN (layer output) */
    LCG_REAL *ln_f;    /* B,T,C */
    LCG_REAL *rs_f;    /* B,T */
    LCG_REAL *logits;  /* B,T,V */
    LCG_REAL *losses;  /* B,T */
    /* backward scratch */
    LCG_REAL *dres;    /* B,T,C */
    LCG_REAL *dC;      /* B,T,C */
    LCG_REAL *dHD;     /* B,T,HD */
    LCG_REAL *d3HD;    /* B,T,3HD */
    LCG_REAL *dF;      /* B,T,F */
    LCG_REAL *d2F;     /* B,T,2F */
    LCG_REAL *dlogits; /* B,T,V */
    LCG_REAL *tmp;     /* B,T,C  (post-norm outputs before the residual add) */
    LCG_REAL *dqs;     /* B,T,H */
} KFN(lcg_acts);

typedef struct {
    lcg_config cfg;
    size_t sizes[LCG_N_PARAM_TENSORS];
    size_t n_params;
    LCG_REAL *params_mem;      /* n_params */
    LCG_REAL *grads_mem;       /* n_params */
    KFN(lcg_params) params, grads;
    float *slopes;             /* H: ALiBi slope per head (0 = none) */
    int row, scale, h0;        /* normalizer row function, length scaling, first scaled head */
    /* activations: capacity and the shape of the last forward */
    int cap_B, cap_T, B, T;
    LCG_REAL *acts_mem;
    KFN(lcg_acts) acts;
    const int *tok;            /* B,T of the last forward (borrowed) */
    const int *targets;        /* B,T */
    const unsigned char *mask; /* B,T */
    int n_mask;
} KFN(lcg_model);

/* allocate and initialize: matrices and embedding ~ N(0, 0.02), norm weights 0, length
 * scaling as the reference (ssmax beta ~ N(1, 0.01); entmax-learn beta ~ U(0.1, 1),
 * gamma ~ N(0, 0.1); asentmax projections ~ N(0, 0.02), biases 0); the generator is consumed
 * in tensor order, element by element */
void KFN(model_init)(KFN(lcg_model) *m, const lcg_config *cfg, uint64_t seed);
void KFN(model_free)(KFN(lcg_model) *m);
/* bytes of parameters, gradients and the activations of a [B, T] training batch */
size_t KFN(model_train_bytes)(const lcg_config *cfg, int B, int T);
/* forward over tok[B,T]; if targets/mask are given, returns the mean loss over masked
 * positions (else 0). Activation buffers grow as needed. */
double KFN(model_forward)(KFN(lcg_model) *m, const int *tok, const int *targets,
                          const unsigned char *mask, int B, int T);
void KFN(model_zero_grad)(KFN(lcg_model) *m);
/* gradient of the last forward's mean loss, accumulated into grads */
void KFN(model_backward)(KFN(lcg_model) *m);
/* the length-scaling tensors of layer l, pointing into t = params.t or grads.t */
KFN(lcg_lenscale_w) KFN(model_lenscale)(const KFN(lcg_model) *m, LCG_REAL *const *t, int l);
/* after a forward whose loss is not finite: the first activation (in forward order) holding a
 * NaN or Inf, described in `what` ("attention weights ... of layer 1"); returns its layer
 * (L for the logits, 0 for the embeddings) or -1 if every activation is finite */
int KFN(model_find_nonfinite)(const KFN(lcg_model) *m, char *what, size_t n);
