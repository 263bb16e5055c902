"""The engine's speed next to a minimal hand-written PyTorch loop, on the same model and data, in one run.

Both loops train the benchmark's ResNet-18 on CIFAR-10 held on the device as
uint8 (normalise, random crop + flip on the device, bf16 autocast,
channels-last on CUDA, SGD) and evaluate it; figures are images/s after a
warm-up. Also timed: RBM's retain mask, one MinNorm-OG step (in the method,
with its projection) and the end-to-end ``unlearn()`` of one class from the
decoded-tensor cache (model load, both models' full evaluation included).

    python scripts/bench_engine.py --original originals/cifar10-resnet18
    # CPU smoke run: --limit 2000 --steps 3
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from bench_cifar10 import METHOD_SETTINGS, Bench  # noqa: E402
from common import SHARED_CIFAR10, device_name  # noqa: E402

from hf_unlearn import ForgetSpec  # noqa: E402


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn, repeats: int = 3) -> float:
    """Median seconds of ``fn`` after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        sync()
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def hand_written_train(model, images, labels, mean, std, steps: int, batch: int, lr: float) -> None:
    """What one would write by hand: index, normalise, crop + flip, bf16 forward/backward, SGD."""
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    dev = images.device
    cuda = dev.type == "cuda"
    n, _, h, w = images.shape
    pad = h // 8
    model.train()
    order = torch.randperm(n, device=dev)
    for i in range(steps):
        idx = order[(i * batch) % (n - batch):][:batch]
        x = (images[idx].float() / 255 - mean) / std
        xp = F.pad(x, (pad, pad, pad, pad))
        dy = torch.randint(0, 2 * pad + 1, (batch,), device=dev)
        dx = torch.randint(0, 2 * pad + 1, (batch,), device=dev)
        rows = (torch.arange(h, device=dev)[None, :] + dy[:, None])[:, :, None]
        cols = (torch.arange(w, device=dev)[None, :] + dx[:, None])[:, None, :]
        x = xp[torch.arange(batch, device=dev)[:, None, None], :, rows, cols].permute(0, 3, 1, 2)
        x = torch.where(torch.rand(batch, device=dev)[:, None, None, None] < 0.5, x.flip(3), x)
        if cuda:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cuda):
            loss = F.cross_entropy(model(pixel_values=x).logits.float(), labels[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


@torch.no_grad()
def hand_written_eval(model, images, mean, std, batch: int) -> torch.Tensor:
    model.eval()
    cuda = images.device.type == "cuda"
    outs = []
    for s in range(0, len(images), batch):
        x = (images[s:s + batch].float() / 255 - mean) / std
        if cuda:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(images.device.type, dtype=torch.bfloat16, enabled=cuda):
            outs.append(model(pixel_values=x).logits.float())
    return torch.cat(outs).cpu()


def main() -> None:
    from hf_unlearn.engine import TrainSettings
    from hf_unlearn.methods.base import ce
    from hf_unlearn.methods.masks import build_mask

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--original", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=200, help="training steps per timed repeat")
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--cache-dir", type=Path, default=None)
    ap.add_argument("--skip-e2e", action="store_true")
    args = ap.parse_args()

    bench = Bench(args.original, args.limit, args.cache_dir, "bf16")
    eng, norm = bench.engine, bench.normalizer
    images, labels = bench.train.images, bench.train.labels
    mean, std = norm.mean.to(images.device), norm.std.to(images.device)
    n_steps_images = args.steps * args.batch
    rows = {}

    # training throughput: same model, same number of images, same augmentation
    hand_model = copy.deepcopy(bench.model)
    t_hand = timed(lambda: hand_written_train(hand_model, images, labels, mean, std, args.steps, args.batch, 0.01))
    eng_model = copy.deepcopy(bench.model)
    n = min(len(bench.train), n_steps_images)
    split = bench.train.subset(torch.arange(n))
    settings = TrainSettings(epochs=max(1, n_steps_images // n), lr=0.01, batch_size=args.batch,
                             bn_policy="train", augment="flip_crop")
    t_eng = timed(lambda: eng.train(eng_model, lambda m, b, _: ce(m, b["train"]), settings, norm,
                                    primary=("train", split)))
    eng_images = settings.epochs * n
    rows["train, hand-written loop"] = n_steps_images / t_hand
    rows["train, engine"] = eng_images / t_eng

    # evaluation throughput
    t_hand_eval = timed(lambda: hand_written_eval(hand_model, images, mean, std, eng.eval_batch_size))
    t_eng_eval = timed(lambda: eng.predict(eng_model, bench.train, norm))
    rows["evaluate, hand-written loop"] = len(images) / t_hand_eval
    rows["evaluate, engine"] = len(images) / t_eng_eval

    # method pieces on the class-wise scenario
    data = bench.data(ForgetSpec(classes=("cat",), seed=0))
    rbm = METHOD_SETTINGS["rbm"]

    def retain_mask(sample: int) -> None:
        build_mask(eng, copy.deepcopy(bench.model), data.retain_train, norm, source="retain", rho=rbm["rho"],
                   kind="logit", reduce="sum_of_abs", scope="global", maskable="all", sample=sample,
                   batch_size=512, seed=0)

    t_mask = timed(lambda: retain_mask(rbm.get("saliency_samples", 0)), repeats=1)
    t_mask_full = timed(lambda: retain_mask(0), repeats=1)
    mn = dict(METHOD_SETTINGS["minnorm-og"], epochs=2, t_gd=0)
    steps = -(-len(data.forget) // mn["batch_size"]) * mn["epochs"]
    _, t_mn = bench.run(data, "minnorm-og", mn, 0)
    _, t_plain = bench.run(data, "minnorm-og", dict(mn, lambda_reg=0.0), 0)  # same loop, no projection

    print(f"\n{device_name()}; {type(bench.model).__name__} "
          f"({sum(p.numel() for p in bench.model.parameters()) / 1e6:.1f}M), {tuple(images.shape[1:])} inputs, "
          f"batch {args.batch}, bf16 autocast, channels-last {eng.channels_last}\n")
    print("| what | images/s |")
    print("|---|---|")
    for k, v in rows.items():
        print(f"| {k} | {v:,.0f} |")
    print(f"\nengine / hand-written: train {rows['train, engine'] / rows['train, hand-written loop']:.2f}, "
          f"evaluate {rows['evaluate, engine'] / rows['evaluate, hand-written loop']:.2f}")
    sampled = min(rbm.get("saliency_samples") or len(data.retain_train), len(data.retain_train))
    print(f"RBM retain mask: {t_mask:.2f} s on {sampled} rows (saliency_samples {rbm.get('saliency_samples', 0)}), "
          f"{t_mask_full:.2f} s on all {len(data.retain_train)}")
    print(f"MinNorm-OG: {t_mn / steps * 1000:.1f} ms per step with projection, {t_plain / steps * 1000:.1f} ms "
          f"without (ratio {t_mn / t_plain:.2f}; {steps} steps, n_pert {mn.get('n_pert', 50)})")

    if not args.skip_e2e and not args.limit:
        from hf_unlearn import unlearn

        def e2e() -> tuple[float, float]:
            t = time.perf_counter()
            res = unlearn(str(args.original), str(SHARED_CIFAR10), ForgetSpec(classes=("cat",)), "rbm",
                          mixed_precision="bf16", cache_dir=args.cache_dir, eval_batch_size=1024,
                          **METHOD_SETTINGS["rbm"])
            return time.perf_counter() - t, res.report.rte_s

        e2e()  # builds the decoded-tensor cache for this processor (and the datasets arrow cache)
        total, rte = e2e()
        print(f"end-to-end unlearn() of class cat with RBM from the cache: {total:.1f} s "
              f"(method {rte:.1f} s; the rest loads, moves and evaluates original and result on all splits)")


if __name__ == "__main__":
    main()
