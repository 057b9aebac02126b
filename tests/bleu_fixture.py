#!/usr/bin/env python3
"""Writes tests/data/bleu.txt: random corpora of token-id pairs and sacreBLEU's corpus BLEU of
each (4-gram, 13a tokenization, no smoothing; divided by 100), which tests/test_bleu.c checks
harness/bleu.c against. Regenerate with `python3 tests/bleu_fixture.py` (needs sacrebleu)."""
import random
import sys

import sacrebleu


def corpus(rng, kind, n_pairs):
    pairs = []
    for _ in range(n_pairs):
        n = rng.randint(0, 12) if kind == "short" else rng.randint(8, 300)
        v = rng.choice([4, 16, 40, 1000, 65535])
        ref = [rng.randrange(v) for _ in range(n)]
        if kind == "sort":  # a sort task: the answer is the sorted source, hypotheses near it
            ref = sorted(ref)
        hyp = list(ref)
        edits = rng.choice([0, 0, 1, 2, 5, n // 3 + 1])
        for _ in range(edits):
            op = rng.randrange(4)
            if op == 0 and hyp:
                hyp[rng.randrange(len(hyp))] = rng.randrange(v)
            elif op == 1 and hyp:
                del hyp[rng.randrange(len(hyp))]
            elif op == 2:
                hyp.insert(rng.randrange(len(hyp) + 1), rng.randrange(v))
            else:
                hyp = hyp[: rng.randrange(len(hyp) + 1)]
        if rng.random() < 0.05:
            hyp = []
        pairs.append((hyp, ref))
    return pairs


def main():
    rng = random.Random(20261201)
    out = ["# corpora of (hypothesis, reference) token ids and sacreBLEU %s corpus BLEU / 100" % sacrebleu.__version__]
    n_pairs = 0
    for c in range(60):
        kind = ["short", "long", "sort"][c % 3]
        pairs = corpus(rng, kind, rng.randint(1, 12))
        hyps = [" ".join(map(str, h)) for h, _ in pairs]
        refs = [" ".join(map(str, r)) for _, r in pairs]
        score = sacrebleu.corpus_bleu(hyps, [refs], tokenize="13a", smooth_method="none", force=True).score / 100
        out.append("corpus %d %.17g" % (len(pairs), score))
        for h, r in pairs:
            out.append("H " + " ".join(map(str, h)))
            out.append("R " + " ".join(map(str, r)))
        n_pairs += len(pairs)
    path = "tests/data/bleu.txt"
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    print("wrote %s: 60 corpora, %d pairs" % (path, n_pairs), file=sys.stderr)


if __name__ == "__main__":
    main()
