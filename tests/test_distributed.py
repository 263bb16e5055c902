"""Two processes (gloo, CPU) against one: same metrics, same mask, one output.

``accelerate launch --cpu --num_processes 2`` starts a single process unless
an MPI hostfile is given (accelerate's simple launcher), so the two CPU
processes are started with ``--multi_gpu`` (torchrun underneath) and the run's
own ``--cpu``: accelerate then runs MULTI_CPU over gloo, as the report records.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file
from test_app import free_port

from hf_unlearn.cli import main


@pytest.fixture(scope="module")
def runs(demo_assets, tmp_path_factory):
    """RBM (a retain mask, then masked training) on the digits demo, in one process and in two."""
    root = tmp_path_factory.mktemp("dist")
    args = ["run", "--model", str(demo_assets[0]), "--dataset", str(demo_assets[1]), "--forget-class", "3",
            "--method", "rbm", "--epochs", "2", "--quiet", "--cpu"]
    assert main([*args, "--output", str(root / "one")]) == 0
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
              "--main_process_port", str(free_port()), "-m", "hf_unlearn.cli"]
    proc = subprocess.run([*launch, *args, "--output", str(root / "two")], capture_output=True, text=True,
                          timeout=600, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root, proc


def _report(path):
    return json.loads((path / "report.json").read_text())


def test_two_processes_give_the_metrics_of_one(runs):
    root, proc = runs
    one, two = _report(root / "one"), _report(root / "two")
    assert one["data"]["processes"] == 1 and two["data"]["processes"] == 2
    n = {"ua": one["data"]["n_forget"], "ra": one["data"]["n_retain"], "ta": one["data"]["n_test"]}
    for k, rows in n.items():
        assert abs(one["metrics"]["unlearned"][k] - two["metrics"]["unlearned"][k]) <= 100.0 / rows + 1e-9, k
    for k in ("ua", "ra", "ta"):  # the original's evaluation is gathered from both ranks: exactly equal
        assert one["metrics"]["original"][k] == two["metrics"]["original"][k]


def test_one_report_and_checkpoint_written_once(runs):
    root, proc = runs
    assert sorted(p.name for p in root.iterdir()) == ["one", "two"]  # no second or temporary folder
    assert proc.stdout.count("saved to") == 1


def test_the_mask_under_two_processes_equals_the_one_under_one(runs):
    root, _ = runs
    one = load_file(str(root / "one" / "unlearning_mask.safetensors"))
    two = load_file(str(root / "two" / "unlearning_mask.safetensors"))
    assert one.keys() == two.keys()
    for k in one:
        assert bool((one[k] == two[k]).all()), k


def test_every_method_runs_through_the_python_api_under_two_processes(demo_assets, tmp_path):
    out = tmp_path / "methods.json"
    script = str(Path(__file__).with_name("dist_every_method.py"))
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
              "--main_process_port", str(free_port()), script, str(demo_assets[0]), str(demo_assets[1]), str(out)]
    proc = subprocess.run(launch, capture_output=True, text=True, timeout=900,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results.pop("processes") == 2
    from hf_unlearn import available_methods

    assert sorted(results) == sorted(available_methods())
    for name, m in results.items():
        assert all(0.0 <= m[k] <= 100.0 for k in ("ua", "ra", "ta", "mia_efficacy")), (name, m)


def test_an_audit_under_two_processes_equals_the_one_under_one(demo_assets, tmp_path):
    """N = 8: the two gloo processes run seeds 0, 2, … and 1, 3, … whole (no DDP), and the gathered confidence
    matrices and scores equal one process's exactly. Each side trains its own references (its own cache), so
    the retrained matrix is compared too; one thread a process on both sides, as the arithmetic then agrees."""
    import numpy as np

    args = ["audit", "--model", str(demo_assets[0]), "--dataset", str(demo_assets[1]), "--forget-class", "3",
            "--method", "rbm", "--epochs", "2", "--n-models", "8", "--retrain-set", "epochs=3", "--cpu", "--quiet"]
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
              "--main_process_port", str(free_port()), "-m", "hf_unlearn.cli"]
    for name, command in (("one", [sys.executable, "-m", "hf_unlearn.cli"]), ("two", launch)):
        env = dict(os.environ, OMP_NUM_THREADS="1", HF_UNLEARN_CACHE=str(tmp_path / f"cache-{name}"))
        proc = subprocess.run([*command, *args, "--output", str(tmp_path / name)], capture_output=True, text=True,
                              timeout=600, env=env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert proc.stdout.count("saved the audited checkpoint") == 1  # one process writes
    one, two = (json.loads((tmp_path / n / "audit.json").read_text()) for n in ("one", "two"))
    assert (one["processes"], two["processes"]) == (1, 2)
    assert one["metrics"] == two["metrics"] and one["epsilon"] == two["epsilon"]
    assert one["metrics"]["forget_quality_ceiling"] > 0  # a score that could differ, not two zeros
    a, b = (np.load(tmp_path / n / "audit_confidences.npz") for n in ("one", "two"))
    for key in a.files:
        assert np.array_equal(a[key], b[key]), key
