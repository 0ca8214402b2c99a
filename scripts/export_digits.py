#!/usr/bin/env python3
"""Exports scikit-learn's 8x8 handwritten digits (UCI ML hand-written digits, 1797 images,
pixel values 0-16) to sim/data/digits.csv: one image per line, 64 pixels then the label.

Run once; the CSV is committed and embedded in the ReRAM K-FAC workload (sim::reram::kfac).
    python3 scripts/export_digits.py [OUT]
"""
import sys

from sklearn.datasets import load_digits


def main() -> None:
    out = sys.argv[1] if len(sys.argv) > 1 else "sim/data/digits.csv"
    d = load_digits()
    with open(out, "w", encoding="ascii") as f:
        f.write("# sklearn.datasets.load_digits(): 64 pixels (0-16) then the label; 1797 rows\n")
        for x, y in zip(d.data.astype(int), d.target):
            f.write(",".join(str(v) for v in x) + f",{y}\n")
    print(f"wrote {len(d.target)} images to {out}")


if __name__ == "__main__":
    main()
