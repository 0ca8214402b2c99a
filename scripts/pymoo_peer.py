#!/usr/bin/env python3
"""The peer for the engine's search-quality and speed figures: pymoo's NSGA-II (and NSGA-III on
DTLZ2) with the budget of the README's table (population 100, 250 generations), seeds 1-5.

Prints a markdown table: final-population hypervolume (reference point 1.1 per objective) as a
percentage of the true front's, with the true front's hypervolume computed as archsweep computes
it (closed form for ZDT1, ZDT2, DTLZ2; a 200,001-point sample for ZDT3), and the wall time of
each run. Usage: python3 scripts/pymoo_peer.py   (needs: pip install pymoo==0.6.2)
"""
import math
import time

import numpy as np
import pymoo
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.algorithms.moo.nsga3 import NSGA3
from pymoo.indicators.hv import HV
from pymoo.optimize import minimize
from pymoo.problems import get_problem
from pymoo.util.ref_dirs import get_reference_directions


def true_hv(name):
    r = 1.1
    if name == "zdt1":
        return (r - 1 + 2 / 3) + (r - 1) * r
    if name == "zdt2":
        return (r - 1 + 1 / 3) + (r - 1) * r
    if name == "dtlz2":
        return r ** 3 - math.pi / 6
    x = np.linspace(0, 1, 200_001)
    f = np.stack([x, 1 - np.sqrt(x) - x * np.sin(10 * math.pi * x)], axis=1)
    return HV(ref_point=np.array([r, r]))(f)


def main():
    print(f"pymoo {pymoo.__version__}")
    print("| problem | algorithm | final population, % of true front (seeds 1-5) | seconds per run |")
    print("|---|---|---|---|")
    cases = [("zdt1", "nsga2"), ("zdt2", "nsga2"), ("zdt3", "nsga2"), ("dtlz2", "nsga2"), ("dtlz2", "nsga3")]
    for name, algo in cases:
        problem = get_problem(name) if name != "dtlz2" else get_problem("dtlz2", n_var=12, n_obj=3)
        m = problem.n_obj
        hv = HV(ref_point=np.array([1.1] * m))
        truth = true_hv(name)
        ratios, secs = [], []
        for seed in range(1, 6):
            if algo == "nsga2":
                alg = NSGA2(pop_size=100)
            else:
                alg = NSGA3(pop_size=100, ref_dirs=get_reference_directions("das-dennis", 3, n_partitions=12))
            t = time.perf_counter()
            res = minimize(problem, alg, ("n_gen", 250), seed=seed, verbose=False)
            secs.append(time.perf_counter() - t)
            ratios.append(100 * hv(res.F) / truth)
        print(f"| {name} | {algo} | {' '.join(f'{x:.2f}' for x in ratios)} | {sum(secs) / len(secs):.2f} |")


if __name__ == "__main__":
    main()
