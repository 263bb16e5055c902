"""Presets: real Hub image classifiers with the datasets they were fine-tuned on, and what a run costs.

Typing a model id, a dataset id, its config, its splits and its columns is where a
first run goes wrong, and nothing tells a user beforehand that a Retrain reference
of a ViT-B/16 on CIFAR-10 takes days on a laptop's CPU. Each :class:`Preset` is a
widely used ``transformers`` fine-tune (``AutoModelForImageClassification``, no
``trust_remote_code``) paired with the Hub dataset its card names, the columns of
that dataset, the pre-trained checkpoint the card names (Retrain restarts from it:
several of these cards name it only in prose, not as ``base_model`` metadata, so
the app passes it as ``retrain_base``) and the figures an estimate needs.

Every figure is rough, and says where it comes from:

* ``parameters_m``: the architecture's published count (ViT-B/16 86.4 M with its
  pooler, ResNet-50 25.6 M, ConvNeXt-T 28.6 M, Swin-T 28.3 M, all with a
  1000-class head) with the head resized to the dataset's classes and, for ViT,
  without the pooler ``ViTForImageClassification`` does not have; e.g. ViT-B/16
  on 10 classes: 85,798,656 + 768·10 + 10 = 85.81 M.
* ``weights_mb`` and ``base_mb``: 4 bytes per parameter (float32, the format of
  these checkpoints, ``.bin`` or ``.safetensors``; a repo may hold both, a load
  fetches one). Checked against the listed files where the search found them:
  343 MB for ``vit-base-mnist``, 111 MB for ``convnext-tiny-finetuned-cifar10``.
* ``dataset_mb``: the Hub's parquet files, approximately (CIFAR-10 and CIFAR-100
  about 144 MB each as PNG images, MNIST about 18 MB).
* ``n_train``, ``n_test``: the rows of the Hub splits (50,000/10,000; MNIST 60,000/10,000).
  Several fine-tunes were trained on part of the train split (the Trainer
  examples hold out 10 or 15 % of it for evaluation); ``note`` says where.
* ``gflops``: the published forward cost at ``image_size`` (ViT-B/16 17.6,
  ResNet-50 4.1, ConvNeXt-T 4.5, Swin-T 4.5). Like every vision paper these
  count multiply-accumulates; :func:`estimate` counts 2 FLOPs per
  multiply-accumulate (:data:`FLOPS_PER_MAC`), as the matmul probe does.
* ``retrain_epochs``: the epochs the card's training recipe ran; 10 where the
  card gives no recipe (:data:`DEFAULT_RETRAIN_EPOCHS`).
* the hardware's speed: a short matmul probe (:func:`throughput_flops`) scaled
  by an efficiency factor (:data:`EFFICIENCY`).

:func:`estimate` adds up one unlearning run with its Retrain reference (see
there); the result is meant to tell minutes from hours from days, not to plan
to the minute: data loading, resizing 32-pixel images to 224 and the per-batch
overhead are left out, and on a GPU with few CPU cores they can dominate.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass

#: FLOPs per multiply-accumulate: the published GFLOPs of vision models count multiply-accumulates
FLOPS_PER_MAC = 2.0
#: one training step (forward, backward through activations and weights) costs about 3 forwards
TRAIN_STEP_FORWARDS = 3.0
#: the models a run evaluates on train and test once each: the original, the unlearned model and Retrain
EVALUATED_MODELS = 3
#: epochs of a Retrain whose card gives no recipe
DEFAULT_RETRAIN_EPOCHS = 10.0
#: passes over the retain set an unlearning method makes (the fine-tuning methods default to 5 epochs)
DEFAULT_METHOD_EPOCHS = 5.0
#: the fraction of the matmul probe's rate that training a real network reaches (see :func:`throughput_flops`)
EFFICIENCY = {"cuda": 0.35, "cpu": 0.8}
#: the longest a probe times its matmuls, in seconds
PROBE_SECONDS = 0.2
#: what preset_lines appends to each line when the Hub cannot be reached
OFFLINE_SUFFIX = "needs the Hub: offline here"


@dataclass(frozen=True)
class Preset:
    """A Hub fine-tune, the Hub dataset it was trained on, and the figures that size a run on it."""

    label: str
    model: str
    dataset: str
    dataset_config: str | None
    train_split: str
    test_split: str
    image_column: str
    label_column: str
    architecture: str
    parameters_m: float
    weights_mb: float
    dataset_mb: float
    n_train: int
    n_test: int
    image_size: int
    gflops: float
    note: str
    #: the pre-trained checkpoint the card names; Retrain fine-tunes it again with a new head (``retrain_base``)
    base_model: str | None = None
    #: download size of ``base_model`` (float32)
    base_mb: float = 0.0
    num_classes: int = 10
    #: epochs of the recipe the card reports (:data:`DEFAULT_RETRAIN_EPOCHS` where it reports none)
    retrain_epochs: float = DEFAULT_RETRAIN_EPOCHS


def _label(arch: str, data: str, model: str) -> str:
    return f"{arch} on {data} ({model})"


_CIFAR10 = dict(dataset="uoft-cs/cifar10", dataset_config="plain_text", train_split="train", test_split="test",
                image_column="img", label_column="label", dataset_mb=144.0, n_train=50_000, n_test=10_000,
                num_classes=10)
_CIFAR100 = dict(dataset="uoft-cs/cifar100", dataset_config="cifar100", train_split="train", test_split="test",
                 image_column="img", label_column="fine_label", dataset_mb=144.0, n_train=50_000, n_test=10_000,
                 num_classes=100)
_MNIST = dict(dataset="ylecun/mnist", dataset_config="mnist", train_split="train", test_split="test",
              image_column="image", label_column="label", dataset_mb=18.0, n_train=60_000, n_test=10_000,
              num_classes=10)
_VIT_BASE = dict(architecture="ViT-B/16", image_size=224, gflops=17.6,
                 base_model="google/vit-base-patch16-224-in21k", base_mb=345.6)

PRESETS: tuple[Preset, ...] = (
    Preset(
        label=_label("ViT-B/16", "CIFAR-10", "aaraki/vit-base-patch16-224-in21k-finetuned-cifar10"),
        model="aaraki/vit-base-patch16-224-in21k-finetuned-cifar10", **_CIFAR10, **_VIT_BASE,
        parameters_m=85.81, weights_mb=343.2, retrain_epochs=1,
        note="card: 1 epoch from google/vit-base-patch16-224-in21k over the whole train split (390 steps of "
             "128), 97.88 % on its evaluation set, 95.07 % verified on test; the card names its base in prose "
             "only"),
    Preset(
        label=_label("ConvNeXt-T", "CIFAR-10", "ahsanjavid/convnext-tiny-finetuned-cifar10"),
        model="ahsanjavid/convnext-tiny-finetuned-cifar10", **_CIFAR10,
        architecture="ConvNeXt-T", parameters_m=27.83, weights_mb=111.3, image_size=224, gflops=4.5,
        base_model="facebook/convnext-tiny-224", base_mb=114.4,
        note="card: ConvNeXt-T (ImageNet-1k, 224 px) fine-tuned on CIFAR-10, no recipe or accuracy given: "
             "Retrain assumes 10 epochs"),
    Preset(
        label=_label("Swin-T", "CIFAR-10", "rs127/swin-tiny-patch4-window7-224-finetuned-cifar10"),
        model="rs127/swin-tiny-patch4-window7-224-finetuned-cifar10", **_CIFAR10,
        architecture="Swin-T", parameters_m=27.53, weights_mb=110.1, image_size=224, gflops=4.5,
        base_model="microsoft/swin-tiny-patch4-window7-224", base_mb=113.2, retrain_epochs=3,
        note="card: 3 epochs from microsoft/swin-tiny-patch4-window7-224 on 45,000 train rows (351 steps of "
             "128), 96.62 % on the 5,000 held out from the train split"),
    Preset(
        label=_label("ResNet-50", "CIFAR-10", "jialicheng/resnet-50-cifar10-21"),
        model="jialicheng/resnet-50-cifar10-21", **_CIFAR10,
        architecture="ResNet-50", parameters_m=23.53, weights_mb=94.1, image_size=224, gflops=4.1,
        base_model="microsoft/resnet-50", base_mb=102.2, retrain_epochs=10,
        note="card: 10 epochs from microsoft/resnet-50 (lr 2e-5, seed 21; 1,329 steps of 32 = about 42,500 "
             "rows per epoch), 92.76 % on its evaluation set; from the MU-Bench unlearning benchmark's author"),
    Preset(
        label=_label("ViT-B/16", "CIFAR-100", "Ahmed9275/Vit-Cifar100"),
        model="Ahmed9275/Vit-Cifar100", **_CIFAR100, **_VIT_BASE,
        parameters_m=85.88, weights_mb=343.5, retrain_epochs=4,
        note="card: 4 epochs, 89.85 % on the 10,000 test images (eval_results.json); fine_label (100 "
             "classes); the ViT of the unlearning paper 'Learning to unlearn' (Cha et al., AAAI 2024)"),
    Preset(
        label=_label("ViT-B/16", "MNIST", "farleyknight-org-username/vit-base-mnist"),
        model="farleyknight-org-username/vit-base-mnist", **_MNIST, **_VIT_BASE,
        parameters_m=85.81, weights_mb=343.2, retrain_epochs=5,
        note="card: 5 epochs on 51,000 train rows (6,375 steps of 8), 99.49 % on the 9,000 held out from the "
             "train split; greyscale digits, converted to RGB"),
)


def find_preset(label: str) -> Preset | None:
    """The preset shown as ``label`` in the app (or whose model id is ``label``), or None."""
    text = (label or "").strip()
    return next((p for p in PRESETS if text in (p.label, p.model)), None)


def _device(device: str | None) -> str:
    """"cuda" or "cpu": the kind of the given device, or of the best one here when None."""
    if device is None:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return "cuda" if str(device).startswith("cuda") else "cpu"


def _timed_matmuls(a, b, sync) -> float:
    """FLOP/s of ``a @ b`` repeated for about :data:`PROBE_SECONDS` (after one untimed warm-up)."""
    a @ b
    sync()
    n, k, done = a.shape[0], a.shape[1], 0
    start = time.perf_counter()
    while True:
        for _ in range(4 if a.is_cuda else 1):
            a @ b
            done += 1
        sync()
        elapsed = time.perf_counter() - start
        if elapsed >= PROBE_SECONDS:
            return 2.0 * n * k * b.shape[1] * done / elapsed


@functools.cache
def _probe(kind: str) -> float:
    """The matmul rate of this machine's ``kind`` ("cuda" or "cpu") in FLOP/s, measured once per process."""
    import torch

    if kind == "cuda":
        props = torch.cuda.get_device_properties(torch.cuda.current_device())
        dtype = torch.bfloat16 if (props.major, props.minor) >= (8, 0) else torch.float16
        n = 8192 if props.total_memory > 16 * 2**30 else 4096
        a, b = (torch.randn(n, n, device="cuda", dtype=dtype) for _ in range(2))
        rate = _timed_matmuls(a, b, torch.cuda.synchronize)
        del a, b
        return rate
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    return _timed_matmuls(a, b, lambda: None)


def throughput_flops(device: str | None = None) -> float:
    """The FLOP/s that training reaches here: a matmul probe's rate times :data:`EFFICIENCY`.

    On CUDA the probe multiplies two 8192² (4096² on a GPU of 16 GiB or less)
    bf16 matrices (fp16 before Ampere) for about 0.2 s, the precision mixed
    precision trains in; with ``mixed_precision="no"`` a GPU trains in float32,
    several times slower than this says. On a CPU it multiplies 1024² float32
    matrices for about 0.2 s. The probe runs once per process and kind of device
    (:func:`functools.cache`); the first CUDA call also pays for CUDA's start.

    Why a fraction: a network is not one large matmul. Attention softmax,
    normalisation layers, activations and depthwise convolutions are bound by
    memory bandwidth, not arithmetic; small batches and kernel launches leave a
    GPU idle between kernels; the optimizer step and the loss are extra passes
    over memory; and a GPU waits for the CPU to decode and resize images. Mixed
    precision training of ViTs reaches about a third of a GPU's matmul rate,
    convnets often less: 0.35, optimistic for ResNets on a GPU fed by few CPU
    cores. A CPU loses less (its matmuls are slow, so the rest weighs less):
    one AdamW step on a batch of 8 at 224 px on the 2-core development machine
    ran at 0.95 (ResNet-50), 0.93 (ViT-B/16) and 0.74 (ConvNeXt-T, depthwise
    convolutions) of the probe's rate, counting 3 forwards of published
    multiply-accumulates × 2 per image: 0.8, leaving a little for data loading
    and evaluation's smaller share of arithmetic.
    """
    kind = _device(device)
    return _probe(kind) * EFFICIENCY[kind]


@dataclass(frozen=True)
class Estimate:
    """What one unlearning run with its Retrain reference downloads and roughly how long it takes."""

    download_mb: float
    seconds: float
    #: "cuda" or "cpu": the hardware the time is for
    device: str
    #: the effective FLOP/s the time was computed with
    flops: float

    def text(self) -> str:
        """One short line: "≈ 343 MB to download; ≈ 3 h per run with Retrain on this CPU (rough)"."""
        where = "this GPU" if self.device == "cuda" else "this CPU"
        return (f"≈ {_size(self.download_mb)} to download; ≈ {_duration(self.seconds)} per run with Retrain "
                f"on {where} (rough)")


def _round2(x: float) -> float:
    """``x`` to two significant digits."""
    if x <= 0:
        return 0.0
    return round(x, 1 - int(math.floor(math.log10(x))))


def _fmt(x: float) -> str:
    r = _round2(x)
    return f"{r:g}" if r < 1e6 else f"{r:.0f}"


def _size(mb: float) -> str:
    return f"{_fmt(mb / 1000)} GB" if mb >= 1000 else f"{mb:.0f} MB"


def _duration(seconds: float) -> str:
    s = max(seconds, 1.0)
    if s < 90:
        return f"{_fmt(s)} s"
    if s < 90 * 60:
        return f"{_fmt(s / 60)} min"
    if s < 48 * 3600:
        return f"{_fmt(s / 3600)} h"
    return f"{_fmt(s / 86400)} days"


def estimate(preset: Preset, epochs_per_run: float = DEFAULT_METHOD_EPOCHS, device: str | None = None,
             flops: float | None = None) -> Estimate:
    """The download and the rough time of one unlearning run on ``preset`` with its Retrain reference.

    With ``F`` the forward FLOPs of one image (``FLOPS_PER_MAC × gflops × 1e9``), a
    training step costing ``3F`` per image and the retain set the train split less
    one forgotten class (``n_train × (1 − 1/num_classes)``), the run costs

    * the method: ``epochs_per_run`` passes over the retain set, ``3F`` per image;
    * Retrain: ``retrain_epochs`` passes over the retain set from the base, ``3F`` per image;
    * evaluation: train and test once for each of the original, unlearned and Retrain models, ``F`` per image;

    divided by ``flops`` (the hardware's effective FLOP/s, :func:`throughput_flops`
    when None). Given ``flops`` the result depends on its arguments alone.
    The download is the fine-tune's weights, the base Retrain starts from and
    the dataset. A cached Retrain (the same request again) costs only the method.
    """
    kind = _device(device)
    rate = throughput_flops(kind) if flops is None else float(flops)
    if not rate > 0:
        raise ValueError(f"flops must be a positive number of FLOP/s, got {flops}")
    forward = FLOPS_PER_MAC * preset.gflops * 1e9
    retain = preset.n_train * (1 - 1 / max(preset.num_classes, 1))
    training = TRAIN_STEP_FORWARDS * forward * retain * (epochs_per_run + preset.retrain_epochs)
    evaluation = EVALUATED_MODELS * forward * (preset.n_train + preset.n_test)
    download = preset.weights_mb + preset.base_mb + preset.dataset_mb
    return Estimate(download_mb=download, seconds=(training + evaluation) / rate, device=kind, flops=rate)


def preset_lines(online: bool, *, device: str | None = None, flops: float | None = None) -> list[str]:
    """One line per preset for the app: its label and its estimate, and without the Hub, that it needs it."""
    lines = []
    for p in PRESETS:
        line = f"{p.label} · {estimate(p, device=device, flops=flops).text()}"
        lines.append(line if online else f"{line} · {OFFLINE_SUFFIX}")
    return lines
