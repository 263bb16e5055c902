"""Train the original CIFAR-10 classifier of the GPU benchmark (stock transformers ResNet-18, 64 px).

The architecture is what ``AutoModelForImageClassification`` builds from a
``ResNetConfig`` (no custom code). Its ImageNet stem divides the input by 4,
so CIFAR images are resized to 64 px: the residual stages then see 16 × 16
maps, half the side a CIFAR-stem ResNet sees at 32 px. Retrain models use the
same recipe on D_r (``scripts/bench_cifar10.py`` trains them per scenario).

    python scripts/train_original.py --out originals/cifar10-resnet18      # GPU: about 25 s
    python scripts/train_original.py --out /tmp/o --limit 2000 --epochs 1  # CPU smoke run
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import CIFAR_RECIPE, CIFAR_SIZE, cifar10_full, device_name, resnet18_and_processor  # noqa: E402


def limited(dsd, limit: int):
    """The first ``limit`` training and ``limit // 5`` test rows (for smoke runs on a CPU)."""
    if not limit:
        return dsd
    import datasets

    return datasets.DatasetDict({"train": dsd["train"].select(range(limit)),
                                 "test": dsd["test"].select(range(max(10, limit // 5)))})


def train(out: Path, recipe: dict, size: int, seed: int, limit: int, mixed_precision: str,
          cache_dir: Path | None) -> dict:
    """Train, save (model, processor, original.json) atomically into ``out``; return the info."""
    import torch

    from hf_unlearn.engine import Engine
    from hf_unlearn.output import save_checkpoint
    from hf_unlearn.training import train_original

    dsd = limited(cifar10_full(), limit)
    names = dsd["train"].features["label"].names
    model, proc = resnet18_and_processor(names, size)
    engine = Engine(mixed_precision=mixed_precision if torch.cuda.is_available() else "no")
    t0 = time.perf_counter()
    info = train_original(model, proc, dsd, recipe, seed=seed, engine=engine, cache_dir=cache_dir)
    info.update(seconds=time.perf_counter() - t0, device=device_name(), size=size, seed=seed,
                n_train=len(dsd["train"]), n_test=len(dsd["test"]), mixed_precision=engine.accelerator.mixed_precision,
                parameters=sum(p.numel() for p in model.parameters()))
    save_checkpoint(out, model.cpu().to(memory_format=torch.contiguous_format), proc, None, overwrite=True,
                    extra_files={"original.json": json.dumps(info, indent=1)})
    return info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--epochs", type=int, default=CIFAR_RECIPE["epochs"])
    ap.add_argument("--lr", type=float, default=CIFAR_RECIPE["lr"])
    ap.add_argument("--warmup", type=float, default=CIFAR_RECIPE["warmup"],
                    help="share of the steps with a linear warm-up of the rate (e.g. 0.05 for a large --lr)")
    ap.add_argument("--size", type=int, default=CIFAR_SIZE)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=0, help="train on the first N rows only (smoke runs)")
    ap.add_argument("--mixed-precision", default="bf16", choices=["no", "bf16", "fp16"])
    ap.add_argument("--cache-dir", type=Path, default=None, help="where decoded uint8 tensors are cached")
    args = ap.parse_args()
    recipe = dict(CIFAR_RECIPE, epochs=args.epochs, lr=args.lr, warmup=args.warmup)
    info = train(args.out, recipe, args.size, args.seed, args.limit, args.mixed_precision, args.cache_dir)
    print(f"original: test accuracy {info['test_accuracy']:.2f} % after {recipe['epochs']} epochs "
          f"({args.size} px, lr {recipe['lr']}, warm-up {recipe['warmup']}), "
          f"{info['seconds']:.1f} s ({info['n_train'] * recipe['epochs'] / info['seconds']:.0f} images/s incl. "
          f"decoding), {info['device']} -> {args.out}")


if __name__ == "__main__":
    main()
