#!/usr/bin/env python3
"""Peers for the GPU bench, on the same GPU and the same cases as gpubench.

  gpu_peers.py run BENCH.toml PEERS.csv          time PyTorch SDPA (flash backend) and compiled
                                                 FlexAttention on every attention case, and SDPA
                                                 decode on every decode case
  gpu_peers.py compare OURS.csv PEERS.csv OUT.md write the comparison table (ratios to peers)

Masks are rebuilt from the same TOML description with the same seeded hash (splitmix64) as
gpu/src/mask.rs, so both sides attend over exactly the same elements. Every peer output is
checked against a float64 computation on sampled rows before it is timed.
"""
import csv
import math
import sys
import time
import tomllib

import l2flush

M64 = (1 << 64) - 1


def splitmix64(x):
    z = (x + 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def hash_unit(seed, a, b):
    h = splitmix64(splitmix64(seed ^ splitmix64(a)) ^ b)
    return (h >> 11) / float(1 << 53)


def values(x):
    return x if isinstance(x, list) else [x]


def mask_label(m):
    k = m["kind"]
    if k == "full":
        return "full"
    if k == "causal":
        return "causal"
    if k == "sliding_window":
        return f"sliding{m['window']}" + ("" if m.get("causal", True) else "-bidir")
    if k == "block_sparse":
        return f"blocksparse{m['block']}-keep{m['keep']:.2f}" + ("-causal" if m.get("causal", False) else "")
    if k == "var_len":
        return "varlen"
    if k == "document":
        return f"document{len(m['docs'])}" + ("-causal" if m.get("causal", True) else "")
    if k == "random":
        return f"random{m['density']:.4f}"
    raise ValueError(f"unknown mask kind {k}")


def run(bench_path, out_path):
    import torch
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention

    cfg = tomllib.load(open(bench_path, "rb"))
    timing = cfg.get("timing", {})
    warmup, reps = timing.get("warmup", 5), timing.get("reps", 30)
    dev = torch.device("cuda")
    props = torch.cuda.get_device_properties(dev)
    flush = l2flush.flusher(torch, timing)
    # One compiled kernel per (shape, mask): allow as many recompilations as the file has cases,
    # or dynamo silently falls back to eager (unfused, materialised scores).
    import torch._dynamo
    for knob in ("recompile_limit", "cache_size_limit", "accumulated_recompile_limit", "accumulated_cache_size_limit"):
        if hasattr(torch._dynamo.config, knob):
            setattr(torch._dynamo.config, knob, 4096)
    flex = torch.compile(flex_attention, dynamic=False)
    rows = []

    def bench(fn):
        for _ in range(warmup):
            fn()
        torch.cuda.synchronize()
        st = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
        en = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
        for i in range(reps):
            flush()
            st[i].record()
            fn()
            en[i].record()
        torch.cuda.synchronize()
        ts = sorted(s.elapsed_time(e) * 1e3 for s, e in zip(st, en))
        return ts[len(ts) // 2], ts[int(0.1 * (len(ts) - 1))], ts[int(round(0.9 * (len(ts) - 1)))]

    def dense_allowed(m, b, n):
        """Dense [n, n] bool mask for batch element b (used for checks and mask_mods)."""
        q = torch.arange(n, device=dev)[:, None]
        k = torch.arange(n, device=dev)[None, :]
        kind = m["kind"]
        if kind == "full":
            return torch.ones(n, n, dtype=torch.bool, device=dev)
        if kind == "causal":
            return k <= q
        if kind == "sliding_window":
            w = m["window"]
            return ((k <= q) & (q - k < w)) if m.get("causal", True) else ((q - k).abs() < w)
        if kind == "block_sparse":
            bs = m["block"]
            nb = (n + bs - 1) // bs
            kept = torch.tensor([[qb == kb or hash_unit(m["seed"], qb, kb) < m["keep"] for kb in range(nb)] for qb in range(nb)], device=dev)
            if m.get("causal", False):
                kept &= torch.tril(torch.ones(nb, nb, dtype=torch.bool, device=dev))
            out = kept[q // bs, k // bs]
            return out & (k <= q) if m.get("causal", False) else out
        if kind == "var_len":
            ln = m["lens"][b % len(m["lens"])]
            return (q < ln) & (k < ln)
        if kind == "document":
            ids = torch.empty(n, dtype=torch.int64, device=dev)
            s = 0
            for i, d in enumerate(m["docs"]):
                e = max(n, s + d) if i + 1 == len(m["docs"]) else s + d
                ids[s:min(e, n)] = i
                s = e
                if s >= n:
                    break
            out = ids[q] == ids[k]
            return out & (k <= q) if m.get("causal", True) else out
        if kind == "random":
            # Vectorised splitmix64 in int64 (two's complement wrap-around, logical shifts).
            def sm(x):
                x = x + to_i64(0x9E3779B97F4A7C15)
                x = (x ^ lsr(x, 30)) * to_i64(0xBF58476D1CE4E5B9)
                x = (x ^ lsr(x, 27)) * to_i64(0x94D049BB133111EB)
                return x ^ lsr(x, 31)
            seed = m["seed"]
            a = sm(torch.tensor(seed, dtype=torch.int64, device=dev) ^ sm(q.to(torch.int64)))
            h = sm(sm(a) ^ k.to(torch.int64))
            u = lsr(h, 11).to(torch.float64) / float(1 << 53)
            return (u < m["density"]) | (q == k)
        raise ValueError(kind)

    def to_i64(c):
        return c - (1 << 64) if c >= (1 << 63) else c

    def lsr(x, s):
        return (x >> s) & ((1 << (64 - s)) - 1)

    def check(out, q, k, v, masks, label):
        """Relative error of `out` on 64 sampled (b, h, row) rows against float64."""
        g = torch.Generator(device="cpu").manual_seed(7)
        B, H, N, D = q.shape
        num = den = 0.0
        for _ in range(64):
            b, h, i = (int(torch.randint(0, s, (1,), generator=g)) for s in (B, H, N))
            hk = h // (H // k.shape[1])
            allowed = masks[b][i]
            if not bool(allowed.any()):
                continue
            s = (k[b, hk].double() @ q[b, h, i].double()) / math.sqrt(D)
            s[~allowed] = float("-inf")
            ref = torch.softmax(s, 0) @ v[b, hk].double()
            num += float(((out[b, h, i].double() - ref) ** 2).sum())
            den += float((ref ** 2).sum())
        err = math.sqrt(num / den)
        if not err < 2e-2:
            raise SystemExit(f"peer {label}: relative error {err:.3e}")
        return err

    for case in cfg.get("attention", []):
        m = case["mask"]
        label = mask_label(m)
        for n in values(case["seq"]):
            for d in values(case["head_dim"]):
                for dt in values(case["dtype"]):
                    B, H = case["batch"], case["heads"]
                    Hkv = case.get("kv_heads", H)
                    dtype = torch.float16 if dt == "f16" else torch.bfloat16
                    q = torch.randn(B, H, n, d, device=dev, dtype=dtype)
                    k = torch.randn(B, Hkv, n, d, device=dev, dtype=dtype)
                    v = torch.randn(B, Hkv, n, d, device=dev, dtype=dtype)
                    batched = m["kind"] == "var_len"
                    masks = [dense_allowed(m, b, n) for b in range(B if batched else 1)]
                    masks = masks if batched else masks * B
                    shape = [B, H, Hkv, n, n, d]
                    peers = []
                    if m["kind"] in ("full", "causal") and Hkv == H:
                        causal = m["kind"] == "causal"

                        def sdpa():
                            with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                                return F.scaled_dot_product_attention(q, k, v, is_causal=causal)
                        peers.append(("sdpa_flash", sdpa))
                    if m["kind"] == "full":
                        peers.append(("flex", lambda: flex(q, k, v)))
                    else:
                        if batched:
                            stack = torch.stack(masks)
                            mod = lambda b, h, qi, ki: stack[b, qi, ki]
                            bm = create_block_mask(mod, B, None, n, n, device=dev, _compile=True)
                        else:
                            dm = masks[0]
                            mod = lambda b, h, qi, ki: dm[qi, ki]
                            bm = create_block_mask(mod, None, None, n, n, device=dev, _compile=True)
                        peers.append(("flex", lambda bm=bm: flex(q, k, v, block_mask=bm, enable_gqa=Hkv != H)))
                    for name, fn in peers:
                        t0 = time.time()
                        out = fn()
                        torch.cuda.synchronize()
                        err = check(out, q, k, v, masks, f"{name} {case['name']} {n}")
                        med, p10, p90 = bench(fn)
                        print(f"peer {name:<10} {case['name']:<14} {label:<26} {dt} n={n:<6} d={d} {med:9.1f} us err {err:.2e} ({time.time() - t0:.0f} s)", flush=True)
                        rows.append(["attention", case["name"], label, dt, *shape, name, med, p10, p90, err])
                    del q, k, v, masks
    for case in cfg.get("decode", []):
        for ln in values(case["len"]):
            B, H, d = case["batch"], case["heads"], case["head_dim"]
            Hkv = case.get("kv_heads", H)
            dtype = torch.float16 if case.get("dtype", "f16") == "f16" else torch.bfloat16
            q = torch.randn(B, H, 1, d, device=dev, dtype=dtype)
            k = torch.randn(B, Hkv, ln, d, device=dev, dtype=dtype)
            v = torch.randn(B, Hkv, ln, d, device=dev, dtype=dtype)
            fn = lambda: F.scaled_dot_product_attention(q, k, v, enable_gqa=Hkv != H)
            out = fn()
            ref = torch.softmax((q.double() @ k.double().transpose(-1, -2)) / math.sqrt(d), -1) @ v.double()
            err = float((out.double() - ref).norm() / ref.norm())
            med, p10, p90 = bench(fn)
            print(f"peer sdpa decode {case['name']} len {ln}: {med:.1f} us err {err:.2e}", flush=True)
            rows.append(["decode_fp16", case["name"], f"{case.get('dtype', 'f16')}-cache", case.get("dtype", "f16"), B, H, Hkv, 1, ln, d, "sdpa", med, p10, p90, err])
    with open(out_path, "x", newline="") as f:
        w = csv.writer(f)
        w.writerow(["kind", "case", "mask", "dtype", "batch", "heads", "kv_heads", "n_q", "n_kv", "head_dim", "peer", "median_us", "p10_us", "p90_us", "rel_err"])
        w.writerows(rows)
    print(f"wrote {out_path} (torch {torch.__version__}, {props.name})")


def compare(ours_path, peers_path, out_path):
    ours = list(csv.DictReader(open(ours_path)))
    peers = list(csv.DictReader(open(peers_path)))
    key = lambda r: (r["kind"], r["case"], r["mask"], r["dtype"], r["n_q"], r["n_kv"], r["head_dim"])
    copy = [r for r in ours if r["kind"] == "copy"]
    copy_bw = float(copy[0]["gbytes_per_s"]) if copy else float("nan")
    device = ours[0]["device"] if ours else "?"
    lines = [f"# GPU kernels vs peers on {device}", "",
             f"Copy bandwidth (read + write) measured in the same run: {copy_bw:.0f} GB/s.", "",
             "## Masked attention (prefill)", "",
             "TFLOP/s count only unmasked work (4 d per allowed query-key pair per head). Ratio = peer time / our time (> 1: ours faster).", "",
             "| case | mask | dtype | n | d | ours (variant) | ours us | ours TFLOP/s | SDPA flash us | ratio vs SDPA | FlexAttention us | ratio vs Flex | max rel err |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in ours:
        if r["kind"] != "attention" or r["selected"] != "true":
            continue
        t = float(r["median_us"])
        flops = float(r["useful_tflops"]) * t * 1e-6 * 1e12
        pk = [p for p in peers if key(p) == key(r)]
        sd = [float(p["median_us"]) for p in pk if p["peer"] == "sdpa_flash"]
        fx = [float(p["median_us"]) for p in pk if p["peer"] == "flex"]
        f = lambda v: f"{v[0]:.1f}" if v else "-"
        rt = lambda v: f"{v[0] / t:.2f}x" if v else "-"
        lines.append(f"| {r['case']} | {r['mask']} | {r['dtype']} | {r['n_q']} | {r['head_dim']} | {r['variant']} | {t:.1f} | {float(r['useful_tflops']):.0f} | {f(sd)} | {rt(sd)} | {f(fx)} | {rt(fx)} | {float(r['rel_err']):.1e} |")
    lines += ["", "## Decode (one query token, split-KV)", "",
              "| case | cache | len | ours (variant) | ours us | GB/s | % of copy BW | SDPA us | ratio vs SDPA | speedup vs our fp16 | max rel err |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    fp16 = {}
    for r in ours:
        if r["kind"] == "decode_fp16" and r["selected"] == "true":
            fp16[(r["case"], r["n_kv"])] = float(r["median_us"])
    for r in ours:
        if r["kind"] not in ("decode_fp16", "decode_pq") or r["selected"] != "true":
            continue
        t = float(r["median_us"])
        gbs = float(r["gbytes_per_s"])
        sd = [float(p["median_us"]) for p in peers if p["kind"] == "decode_fp16" and p["case"] == r["case"] and p["n_kv"] == r["n_kv"]]
        base = fp16.get((r["case"], r["n_kv"]))
        lines.append(f"| {r['case']} | {r['mask']} | {r['n_kv']} | {r['variant']} | {t:.1f} | {gbs:.0f} | {100 * gbs / copy_bw:.0f}% | "
                     + (f"{sd[0]:.1f} | {sd[0] / t:.2f}x" if sd and r["kind"] == "decode_fp16" else "- | -")
                     + f" | {base / t:.2f}x | {float(r['rel_err']):.1e} |")
    open(out_path, "x").write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "run":
        run(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 5 and sys.argv[1] == "compare":
        compare(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit(__doc__)
