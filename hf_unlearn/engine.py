"""The two loops every method shares: one to train, one to evaluate.

Methods differ only in their loss, in which sets a step draws from and in an
optional parameter mask; everything else (devices and mixed precision through
``accelerate``, batching from the uint8 cache, augmentation, BatchNorm policy,
gradient clipping, exact masking, progress and cancellation) lives here once.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from . import accelerate_compat
from .cancel import raise_if_cancelled
from .data import PixelNormalizer, Split
from .errors import UnlearnError
from .fields import doc

Batch = dict[str, tuple[torch.Tensor, torch.Tensor]]
LossFn = Callable[[nn.Module, Batch, float], torch.Tensor]
#: called before each optimizer step with (model, batch, epoch index, step index); may edit weights in place
StepHook = Callable[[nn.Module, Batch, int, int], None]
ProgressFn = Callable[[dict[str, Any]], None]
ParamMask = dict[str, torch.Tensor]

BN_POLICIES = ("freeze", "train")
AUGMENTATIONS = ("none", "flip", "crop", "flip_crop")


@dataclass
class TrainSettings:
    """Optimisation settings common to every method (each method's settings extend these and may change defaults)."""

    epochs: int = doc(5, "passes over the method's primary set (the retain or the forget set)")
    lr: float = doc(0.01, "learning rate")
    batch_size: int = doc(64, "batch size of each set drawn per step")
    optimizer: str = doc("sgd", "sgd (with momentum) or adamw")
    momentum: float = doc(0.9, "SGD momentum")
    weight_decay: float = doc(5e-4, "weight decay")
    lr_schedule: str = doc("constant", "constant or cosine decay to 0 over the run")
    warmup: float = doc(0.0, "share of the run's steps over which the rate rises linearly to lr (0 = none)")
    clip_grad: float = doc(0.0, "clip the gradient norm to this value (0 = off)")
    bn_policy: str = doc("freeze", "freeze: BatchNorm statistics stay as in the original; train: they update")
    augment: str = doc("none", "training augmentation: none, flip, crop or flip_crop")

    def check(self) -> None:
        """Reject settings that would make the loop meaningless, with the fix in the message."""
        if not isinstance(self.epochs, int) or self.epochs <= 0:
            raise UnlearnError(f"epochs must be a positive integer, got {self.epochs}")
        if not self.lr > 0 or not math.isfinite(self.lr):
            raise UnlearnError(f"lr must be a positive number, got {self.lr}")
        if not isinstance(self.batch_size, int) or self.batch_size <= 0:
            raise UnlearnError(f"batch_size must be a positive integer, got {self.batch_size}")
        if self.optimizer not in ("sgd", "adamw"):
            raise UnlearnError(f"optimizer must be sgd or adamw, got '{self.optimizer}'")
        if self.lr_schedule not in ("constant", "cosine"):
            raise UnlearnError(f"lr_schedule must be constant or cosine, got '{self.lr_schedule}'")
        if not 0 <= self.warmup < 1:
            raise UnlearnError(f"warmup is a fraction of the run's steps in [0, 1), got {self.warmup}")
        if self.bn_policy not in BN_POLICIES:
            raise UnlearnError(f"bn_policy must be one of {', '.join(BN_POLICIES)}, got '{self.bn_policy}'")
        if self.augment not in AUGMENTATIONS:
            raise UnlearnError(f"augment must be one of {', '.join(AUGMENTATIONS)}, got '{self.augment}'")
        if self.weight_decay < 0 or self.momentum < 0 or self.clip_grad < 0:
            raise UnlearnError("weight_decay, momentum and clip_grad must not be negative")


def lr_factor(schedule: str, warmup: float, total: int) -> Callable[[int], float] | None:
    """The learning rate's multiplier at step s, or None for a constant rate.

    A linear warm-up over the first ``warmup`` share of the steps lets a
    large rate start from a random initialisation without the early blow-up
    that cost the CIFAR-10 original 8 points at lr 0.4; cosine decay then
    runs over the steps that remain.
    """
    ramp = int(round(warmup * total))
    if schedule == "constant" and ramp == 0:
        return None

    def factor(step: int) -> float:
        if step < ramp:
            return (step + 1) / ramp
        if schedule == "constant":
            return 1.0
        rest = max(total - ramp, 1)
        return 0.5 * (1 + math.cos(math.pi * min(step - ramp, rest) / rest))

    return factor


def forward_logits(model: nn.Module, pixel_values: torch.Tensor) -> torch.Tensor:
    """Logits of a transformers (or timm-through-transformers) image classifier."""
    return model(pixel_values=pixel_values).logits


def set_bn_policy(model: nn.Module, policy: str) -> None:
    """Train mode, except BatchNorm layers in eval mode under ``freeze``.

    Forget-only batches in train mode would pull the running statistics toward
    the forget data; freezing them is the reference's default.
    """
    model.train()
    if policy == "freeze":
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()


def augment_batch(x: torch.Tensor, kind: str, generator: torch.Generator) -> torch.Tensor:
    """Random crop (zero padding of 1/8 the side) and horizontal flip, on the batch's device.

    Draw with a generator on the batch's device: numbers drawn on the CPU
    would be copied over every step, and each copy waits for the GPU queue.
    """
    if kind == "none":
        return x
    b, _, h, w = x.shape
    dev = x.device
    if "crop" in kind:
        pad = max(1, h // 8)
        xp = F.pad(x, (pad, pad, pad, pad))
        dy = torch.randint(0, 2 * pad + 1, (b,), generator=generator, device=generator.device).to(dev)
        dx = torch.randint(0, 2 * pad + 1, (b,), generator=generator, device=generator.device).to(dev)
        rows = (torch.arange(h, device=dev)[None, :] + dy[:, None])[:, :, None]
        cols = (torch.arange(w, device=dev)[None, :] + dx[:, None])[:, None, :]
        x = xp[torch.arange(b, device=dev)[:, None, None], :, rows, cols].permute(0, 3, 1, 2)
    if "flip" in kind:
        flip = (torch.rand(b, generator=generator, device=generator.device) < 0.5).to(dev)
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
    return x.contiguous()


class MaskGuard:
    """Keeps the weights outside a mask exactly at their starting values, in a few fused kernels per step.

    Gradients are multiplied by the 0/1 mask before the step; after it each
    weight becomes ``θ·m + θ_0·(1 − m)``: θ inside the mask, θ_0 outside,
    whatever weight decay or momentum did there. One ``_foreach`` call per
    operation instead of a kernel or two per parameter tensor: at the batch
    sizes of unlearning the per-tensor loop cost more launches than the
    step's own compute on a GPU.
    """

    def __init__(self, named: list[tuple[str, nn.Parameter]], mask: ParamMask, device: torch.device) -> None:
        self.params = [p for n, p in named if n in mask]
        self.masks = [mask[n].to(device=device, dtype=p.dtype) for n, p in named if n in mask]
        with torch.no_grad():
            self.outside = [p.detach() * (1 - m) for p, m in zip(self.params, self.masks, strict=True)]

    def mask_grads(self) -> None:
        pairs = [(p.grad, m) for p, m in zip(self.params, self.masks, strict=True) if p.grad is not None]
        if pairs:
            torch._foreach_mul_([g for g, _ in pairs], [m for _, m in pairs])

    @torch.no_grad()
    def restore(self) -> None:
        if self.params:
            torch._foreach_mul_(self.params, self.masks)
            torch._foreach_add_(self.params, self.outside)


class Engine:
    """Device, precision and progress for one run.

    ``accelerate`` keeps one process-wide state, so an engine asking for a
    different mixed precision than the last one resets that state first.
    Cancellation is the run's (:mod:`hf_unlearn.cancel`): every step and
    every evaluation batch checks it.
    """

    _precision: str | None = None

    def __init__(self, mixed_precision: str = "no", cpu: bool = False, eval_batch_size: int = 256,
                 progress: ProgressFn | None = None, *, channels_last: bool | None = None,
                 independent: bool = False) -> None:
        from accelerate import Accelerator

        key = f"{mixed_precision}/{cpu}"
        if Engine._precision is not None and Engine._precision != key:
            accelerate_compat.reset_state()
        self.accelerator = Accelerator(mixed_precision=mixed_precision, cpu=cpu)
        Engine._precision = key
        self.device = self.accelerator.device
        # under `accelerate launch`: every rank holds the same data and draws the same batches;
        # each computes its share of every batch and the gradients are averaged (DDP)
        self.world = self.accelerator.num_processes
        self.rank = self.accelerator.process_index
        # ``independent`` (an audit's many whole runs): each process trains and evaluates its own models alone,
        # no DDP and no sharding; ``worker`` of ``workers`` says which runs are its share
        self.workers, self.worker = 1, 0
        if independent:
            self.workers, self.worker = self.world, self.rank
            self.world, self.rank = 1, 0
        # NHWC convolutions are faster on tensor-core GPUs and slower on most CPUs
        self.channels_last = self.device.type == "cuda" if channels_last is None else channels_last
        self.eval_batch_size = eval_batch_size
        self.progress = progress
        self._last_emit = 0.0

    # ------------------------------------------------------------ helpers

    def shard(self, batch: Batch) -> Batch:
        """This rank's share of each set in a step's batch (all of it in a single process).

        A set with fewer rows than ranks is not split: every rank computes it
        whole, so the averaged gradient is still that batch's gradient.
        """
        if self.world == 1:
            return batch
        return {name: tuple(t.tensor_split(self.world)[self.rank] for t in xy) if len(xy[1]) >= self.world else xy
                for name, xy in batch.items()}

    @property
    def is_main(self) -> bool:
        """The process that writes what its run computed (cache entries); every process in ``independent``
        mode, where each computes runs of its own."""
        return self.rank == 0

    def all_agree(self, flag: bool) -> bool:
        """``flag`` on every process (always ``flag`` in a single process).

        A choice that decides whether collective work runs (a cached Retrain reference instead of training it)
        must be the same on every rank, or the ranks that skip it leave the others waiting forever.
        """
        if self.world == 1:
            return flag
        from accelerate.utils import gather_object

        return all(gather_object([bool(flag)]))

    def synchronize(self) -> None:
        """Wait for the device's queued work (timings of GPU work are meaningless without it)."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        elif self.device.type != "cpu" and hasattr(torch, "accelerator"):
            torch.accelerator.synchronize()

    def _emit_due(self, epoch_end: bool) -> bool:
        """A step's progress event is due: always on the CPU, on an accelerator at most every 0.25 s.

        The event reads the running loss, which waits for the device's whole
        queue; once a step it would keep the GPU idle while Python launches
        the next step's kernels.
        """
        now = time.perf_counter()
        if self.device.type == "cpu" or epoch_end or now - self._last_emit >= 0.25:
            self._last_emit = now
            return True
        return False

    def emit(self, **event: Any) -> None:
        if self.progress is not None:
            self.progress(event)

    def stage(self, name: str) -> None:
        """Say which phase of a job starts ("unlearning with rbm", "evaluating"): the app names it and weighs
        the time left by it; training events within it carry the steps."""
        self.emit(stage=name)

    def _on_device(self, split: Split) -> Split:
        """The split on the engine's device (a no-op for data already moved there once, see ``UnlearnData.to``)."""
        return split.to(self.device)

    def place(self, model: nn.Module) -> nn.Module:
        """Move the model to the device, in the memory format the engine computes in."""
        model.to(self.device)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        return model

    def batches(self, split: Split, batch_size: int, normalizer: PixelNormalizer, *, shuffle: bool,
                generator: torch.Generator | None = None,
                augment: str = "none") -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Normalised (and optionally augmented) batches of a split, on the engine's device."""
        n = len(split)
        home = split.labels.device  # where the split lives (the CPU for a memory-mapped split)
        order = torch.randperm(n, generator=generator).to(home) if shuffle else None
        aug_gen = None
        if augment != "none":
            aug_gen = torch.Generator(device=self.device)
            aug_gen.manual_seed(int(torch.randint(0, 2**62, (1,), generator=generator)) if generator else 0)
        for start in range(0, n, batch_size):
            index = slice(start, start + batch_size) if order is None else order[start:start + batch_size]
            yield self._inputs(split, index, normalizer, augment, aug_gen), \
                split.labels[index].to(self.device, non_blocking=True)

    def _inputs(self, split: Split, index: slice | torch.Tensor, normalizer: PixelNormalizer,
                augment: str = "none", aug_gen: torch.Generator | None = None) -> torch.Tensor:
        """The model's input for rows ``index`` of a split: on the device, normalised, augmented, in its layout."""
        x = normalizer(split.pixels(index).to(self.device, non_blocking=True))  # no-op move for data already there
        if aug_gen is not None:
            x = augment_batch(x, augment, aug_gen)
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def _cycle(self, split: Split, batch_size: int, normalizer: PixelNormalizer, generator: torch.Generator,
               augment: str) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        while True:
            yield from self.batches(split, batch_size, normalizer, shuffle=True, generator=generator, augment=augment)

    def make_optimizer(self, params: list[nn.Parameter], settings: TrainSettings) -> torch.optim.Optimizer:
        if settings.optimizer == "adamw":
            return torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
        return torch.optim.SGD(params, lr=settings.lr, momentum=settings.momentum,
                               weight_decay=settings.weight_decay)

    # ------------------------------------------------------------ training

    def train(self, model: nn.Module, loss_fn: LossFn, settings: TrainSettings, normalizer: PixelNormalizer, *,
              primary: tuple[str, Split], secondary: dict[str, Split] | None = None,
              mask: ParamMask | None = None, seed: int = 0, phase: str = "train",
              optimizer: torch.optim.Optimizer | None = None, before_step: StepHook | None = None,
              prepare: Callable[[Batch], Batch] | None = None) -> list[float]:
        """Run ``settings.epochs`` passes over the primary set; returns the mean loss per epoch.

        Each step draws one batch from the primary set and one from each
        secondary set (cycled, reshuffled), so e.g. RL's epoch is a pass over
        ``D_f`` paired with retain batches. With a ``mask`` (parameter name →
        bool tensor, True = may change), gradients outside the mask are zeroed
        and, after every optimizer step, the weights outside it are copied back
        from their original values: weight decay and momentum cannot leak.
        """
        settings.check()
        if len(primary[1]) == 0:
            raise UnlearnError(f"the {primary[0]} set is empty: nothing to train on")
        self.place(model)
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        if mask is not None:
            unknown = set(mask) - {n for n, _ in named}
            if unknown:
                raise ValueError(f"mask names parameters the model lacks: {sorted(unknown)[:3]}")
            named = [(n, p) for n, p in named if n not in mask or bool(mask[n].any())]
        guard = None if mask is None else MaskGuard(named, mask, self.device)
        params = [p for _, p in named]
        opt = optimizer or self.make_optimizer(params, settings)
        opt = self.accelerator.prepare_optimizer(opt, device_placement=False)
        # the loss sees the DDP wrapper (gradient averaging across ranks); hooks, masks and names the model
        forward_model = accelerate_compat.data_parallel(model, self.device) if self.world > 1 else model
        gen = torch.Generator().manual_seed(seed)
        prim_name, prim_split = primary[0], self._on_device(primary[1])
        steps_per_epoch = math.ceil(len(prim_split) / settings.batch_size)
        total = steps_per_epoch * settings.epochs
        factor = lr_factor(settings.lr_schedule, settings.warmup, total)
        sched = None if factor is None else torch.optim.lr_scheduler.LambdaLR(opt.optimizer, factor)
        others = {name: self._cycle(self._on_device(split), settings.batch_size, normalizer, gen, settings.augment)
                  for name, split in (secondary or {}).items() if len(split)}
        epoch_losses: list[float] = []
        step = 0
        t0 = time.perf_counter()
        try:
            for epoch in range(settings.epochs):
                set_bn_policy(model, settings.bn_policy)
                # the loss stays on the device: reading it every step would stall the GPU queue
                running, count = torch.zeros((), device=self.device), 0
                for x, y in self.batches(prim_split, settings.batch_size, normalizer, shuffle=True, generator=gen,
                                         augment=settings.augment):
                    raise_if_cancelled()
                    batch: Batch = {prim_name: (x, y)}
                    for name, it in others.items():
                        batch[name] = next(it)
                    if prepare is not None:  # batch-level randomness, drawn before the batch is split across ranks
                        batch = prepare(batch)
                    if before_step is not None:
                        before_step(model, batch, epoch, step)
                    with self.accelerator.autocast():
                        loss = loss_fn(forward_model, self.shard(batch), step / max(total, 1))
                    opt.zero_grad(set_to_none=True)
                    self.accelerator.backward(loss)
                    if guard is not None:
                        guard.mask_grads()
                    if settings.clip_grad > 0:
                        self.accelerator.clip_grad_norm_(params, settings.clip_grad)
                    opt.step()
                    if sched is not None:
                        sched.step()
                    if guard is not None:
                        guard.restore()
                    running += loss.detach().float()
                    count += 1
                    step += 1
                    if self.progress is not None and self._emit_due(count == steps_per_epoch):
                        mean = float(running) / count
                        self._check_finite(mean, phase, epoch)
                        self.emit(phase=phase, epoch=epoch + 1, epochs=settings.epochs, step=step, steps=total,
                                  loss=mean, elapsed=time.perf_counter() - t0)
                mean = float(running) / max(count, 1)
                self._check_finite(mean, phase, epoch)
                epoch_losses.append(mean)
        finally:
            accelerate_compat.release_optimizers(self.accelerator)
            model.eval()
        return epoch_losses

    @staticmethod
    def _check_finite(mean_loss: float, phase: str, epoch: int) -> None:
        """A NaN/inf loss poisons the running mean, so checking the mean catches any bad step."""
        if not math.isfinite(mean_loss):
            raise UnlearnError(f"{phase}: the loss became {mean_loss} at epoch {epoch + 1}: lower the learning rate")

    # ------------------------------------------------------------ evaluation

    @torch.no_grad()
    def predict(self, model: nn.Module, split: Split, normalizer: PixelNormalizer) -> torch.Tensor:
        """Logits (float32, on the CPU) over a whole split, in eval mode, deterministic inputs.

        The batches' logits stay on the device until the end: one copy back,
        no stall per batch.
        """
        self.place(model)
        model.eval()
        if self.world > 1 and len(split):
            return self._predict_sharded(model, split, normalizer)
        outs: list[torch.Tensor] = []
        for x, _ in self.batches(split, self.eval_batch_size, normalizer, shuffle=False):
            raise_if_cancelled()
            with self.accelerator.autocast():
                outs.append(forward_logits(model, x).float())
        if not outs:
            return torch.empty(0, getattr(getattr(model, "config", None), "num_labels", 0))
        return torch.cat(outs).cpu()

    def _predict_sharded(self, model: nn.Module, split: Split, normalizer: PixelNormalizer) -> torch.Tensor:
        """Each rank predicts one contiguous block of rows; the blocks are gathered in rank order.

        Every row is predicted exactly once, so metrics over the gathered
        logits are those of the whole split (no padding duplicates to drop).
        """
        from accelerate.utils import gather_object

        block = torch.arange(len(split)).tensor_split(self.world)[self.rank]
        outs: list[torch.Tensor] = []
        for start in range(0, len(block), self.eval_batch_size):
            raise_if_cancelled()
            x = self._inputs(split, block[start:start + self.eval_batch_size].to(split.labels.device), normalizer)
            with self.accelerator.autocast():
                outs.append(forward_logits(model, x).float())
        mine = torch.cat(outs).cpu() if outs else torch.empty(0)
        parts = [p for p in gather_object([mine]) if p.numel()]
        return torch.cat(parts)

    @torch.no_grad()
    def recalibrate_bn(self, model: nn.Module, split: Split, normalizer: PixelNormalizer, batch_size: int) -> None:
        """Re-estimate BatchNorm running statistics on ``split`` (cumulative average)."""
        bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        if not bns:
            return
        self.place(model)
        model.eval()
        saved = []
        for m in bns:
            m.reset_running_stats()
            saved.append(m.momentum)
            m.momentum = None
            m.train()
        for x, _ in self.batches(split, batch_size, normalizer, shuffle=False):
            raise_if_cancelled()
            forward_logits(model, x.to(self.device))
        for m, mom in zip(bns, saved, strict=True):
            m.momentum = mom
        model.eval()
