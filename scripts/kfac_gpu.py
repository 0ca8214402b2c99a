#!/usr/bin/env python3
"""Times one K-FAC training iteration on the GPU with PyTorch, for the workloads of
sim::reram::arch (the same layer shapes and batch sizes), and SGD for reference.

Usage: python3 scripts/kfac_gpu.py OUT.csv [--reps N]

Per workload and optimizer, one iteration is: forward, backward, (K-FAC) factor statistics
A = a^T a and G = g^T g with running averages, (every `inv_every` iterations) damped factor
inversion by Cholesky, preconditioning G^-1 dW A^-1, and the weight update. Inputs are random
(timing does not depend on values). fp32, as K-FAC implementations use for the factors.
Time per iteration from CUDA events over `reps` iterations after warm-up; energy from NVML's
total-energy counter over the same span (None where the driver does not expose it).
"""
import argparse
import csv
import datetime
import time

import torch

WORKLOADS = {
    # name: (layers [(outputs, inputs, rows_per_sample)], batch, conv)
    "digits-mlp": ([(32, 64, 1), (10, 32, 1)], 64, False),
    "digits-cnn": ([(8, 9, 36), (10, 72, 1)], 64, True),
    "mnist-mlp": ([(1024, 784, 1), (1024, 1024, 1), (10, 1024, 1)], 128, False),
}


def energy_mj(handle):
    if handle is None:
        return None
    import pynvml

    return pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)


def build(name, dev):
    layers, batch, conv = WORKLOADS[name]
    ws = [torch.randn(o, i + 1, device=dev) * (2.0 / i) ** 0.5 for (o, i, _) in layers]
    if conv:
        x = torch.rand(batch, 1, 8, 8, device=dev)
    else:
        x = torch.rand(batch, layers[0][1], device=dev)
    y = torch.randint(0, 10, (batch,), device=dev)
    return layers, batch, conv, ws, x, y


def forward(layers, batch, conv, ws, x):
    acts, pres = [], []
    if conv:
        p = torch.nn.functional.unfold(x, 3).transpose(1, 2).reshape(-1, 9)  # B*36 x 9
        a = torch.cat([p, torch.ones(p.shape[0], 1, device=x.device)], 1)
    else:
        a = torch.cat([x, torch.ones(x.shape[0], 1, device=x.device)], 1)
    for k, w in enumerate(ws):
        acts.append(a)
        z = a @ w.t()
        z.retain_grad()
        pres.append(z)
        if k + 1 < len(ws):
            h = torch.relu(z)
            if conv and k == 0:
                c = w.shape[0]
                h = h.reshape(batch, 6, 6, c).permute(0, 3, 1, 2)
                h = torch.nn.functional.avg_pool2d(h, 2).reshape(batch, -1)
            a = torch.cat([h, torch.ones(h.shape[0], 1, device=x.device)], 1)
    return acts, pres, z


def iteration(state, opt, step, inv_every, damping=0.003, lr=0.05):
    layers, batch, conv, ws, x, y = state["w"]
    for w in ws:
        w.requires_grad_(True)
        w.grad = None
    acts, pres, out = forward(layers, batch, conv, ws, x)
    loss = torch.nn.functional.cross_entropy(out, y)
    loss.backward()
    with torch.no_grad():
        if opt == "sgd":
            for w in ws:
                w -= lr * w.grad
            return
        for k, w in enumerate(ws):
            a = acts[k].detach()
            g = pres[k].grad * a.shape[0]
            an = a.t() @ a / a.shape[0]
            gn = g.t() @ g / a.shape[0]
            state["A"][k].mul_(0.95).add_(an, alpha=0.05)
            state["G"][k].mul_(0.95).add_(gn, alpha=0.05)
        if step % inv_every == 0:
            for k in range(len(ws)):
                A, G = state["A"][k], state["G"][k]
                pi = ((A.trace() / A.shape[0]) / (G.trace() / G.shape[0])).sqrt()
                sd = damping ** 0.5
                Ad = A + pi * sd * torch.eye(A.shape[0], device=A.device)
                Gd = G + sd / pi * torch.eye(G.shape[0], device=G.device)
                state["Ai"][k] = torch.cholesky_inverse(torch.linalg.cholesky(Ad))
                state["Gi"][k] = torch.cholesky_inverse(torch.linalg.cholesky(Gd))
        for k, w in enumerate(ws):
            w -= lr * (state["Gi"][k] @ w.grad @ state["Ai"][k])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--reps", type=int, default=200)
    args = ap.parse_args()
    dev = torch.device("cuda")
    name = torch.cuda.get_device_name(0)
    handle = None
    try:
        import pynvml

        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
    except Exception as e:  # noqa: BLE001 - report and continue without energy
        print(f"no NVML energy counter: {e}")
        handle = None
    rows = []
    for wl in WORKLOADS:
        for opt, inv_every in [("sgd", 1), ("kfac", 1), ("kfac", 10)]:
            torch.manual_seed(0)
            st = {"w": build(wl, dev)}
            ws = st["w"][3]
            st["A"] = [torch.eye(w.shape[1], device=dev) for w in ws]
            st["G"] = [torch.eye(w.shape[0], device=dev) for w in ws]
            st["Ai"] = [torch.eye(w.shape[1], device=dev) for w in ws]
            st["Gi"] = [torch.eye(w.shape[0], device=dev) for w in ws]
            t_w = time.perf_counter()
            for s in range(20):
                iteration(st, opt, s, inv_every)
            torch.cuda.synchronize()
            per = (time.perf_counter() - t_w) / 20
            # At least `reps` iterations and about 3 s, so the energy counter resolves them.
            reps = max(args.reps, min(50000, int(3.0 / max(per, 1e-6))))
            e0 = energy_mj(handle)
            t0 = time.perf_counter()
            start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for s in range(reps):
                iteration(st, opt, s, inv_every)
            stop.record()
            torch.cuda.synchronize()
            wall = time.perf_counter() - t0
            e1 = energy_mj(handle)
            ms = start.elapsed_time(stop) / reps
            joules = (e1 - e0) / 1e3 / reps if e0 is not None else None
            rows.append({
                "workload": wl, "optimizer": opt, "inv_every": inv_every, "reps": reps,
                "ms_per_iter": round(ms, 5),
                "j_per_iter": None if joules is None else round(joules, 6),
                "wall_s": round(wall, 3), "device": name,
                "torch": torch.__version__,
                "date": datetime.date.today().isoformat(),
            })
            print(f"{wl:11} {opt:5} inv_every {inv_every:2}: {ms:8.4f} ms/iter"
                  + ("" if joules is None else f" {joules * 1e3:8.3f} mJ/iter"))
    with open(args.out, "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        wr.writeheader()
        wr.writerows(rows)


if __name__ == "__main__":
    main()
