"""Time an ID-list request at the scale deletion requests reach: a file of 100,000 IDs read and matched against a
training split's ID column (the selection only; no model).

    python scripts/bench_ids.py [--ids 100000] [--rows 50000]

Prints the seconds to read the file and to select the rows, and the counts.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import datasets
import numpy as np

from hf_unlearn.forget import ForgetSpec, TrainingSplit, get_kind, select_forget
from hf_unlearn.forget.matching import parse_values


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ids", type=int, default=100_000)
    ap.add_argument("--rows", type=int, default=50_000, help="rows of the training split (CIFAR-10's 50,000)")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    users = [f"user-{int(u)}" for u in rng.integers(0, 200_000, args.rows)]
    ds = datasets.Dataset.from_dict({"user_id": users, "label": rng.integers(0, 10, args.rows).tolist()})
    train = TrainingSplit(ds, np.asarray(ds["label"]), [str(i) for i in range(10)])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ids.txt"
        path.write_text("\n".join(f"user-{i}" for i in range(args.ids)) + "\n")
        t0 = time.perf_counter()
        values = parse_values(f"@{path}", "ID")
        read = time.perf_counter() - t0
        t1 = time.perf_counter()
        spec = ForgetSpec.ids("user_id", values)
        rows = select_forget(spec, train)
        selected = time.perf_counter() - t1
        counts = get_kind("ids").matches(spec.fields, train)
    print(f"{len(values)} IDs read in {read:.3f} s; {len(rows)} of {args.rows} rows selected in {selected:.3f} s "
          f"({counts['unmatched']} IDs match no row); {os.cpu_count()} CPU cores")


if __name__ == "__main__":
    main()
