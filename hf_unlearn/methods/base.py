"""What a method is: a name, a settings dataclass with documented defaults, and a run function.

A method sees tensors and a model (through :class:`MethodContext`), never the
Hub or the UI. Settings are dataclasses so that the CLI flags, the app's
controls and the report are all generated from one description.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..data import UnlearnData
from ..engine import Engine, TrainSettings
from ..errors import UnlearnError


def doc(default: Any, help: str) -> Any:  # noqa: A002 - mirrors argparse
    """A dataclass field with its meaning attached (used for --help and the app)."""
    return field(default=default, metadata={"help": help})


@dataclass
class MethodContext:
    """What a method may touch: the engine, the model to edit in place, and the data."""

    engine: Engine
    model: nn.Module
    data: UnlearnData
    seed: int = 0
    #: what a method wants recorded besides the model (e.g. the mask it used)
    artifacts: dict[str, Any] = field(default_factory=dict)


RunFn = Callable[[MethodContext, Any], nn.Module]


@dataclass(frozen=True)
class Method:
    """A registered unlearning method."""

    name: str
    title: str
    summary: str
    settings_cls: type
    run: RunFn
    needs_forget: bool = True

    def settings(self, overrides: dict[str, Any] | None = None) -> Any:
        """Defaults with ``overrides`` applied; strings (from the CLI) are converted by field type."""
        overrides = dict(overrides or {})
        known = {f.name: f for f in fields(self.settings_cls)}
        unknown = sorted(set(overrides) - set(known))
        if unknown:
            raise UnlearnError(
                f"unknown setting '{unknown[0]}' for method '{self.name}'; its settings are: {', '.join(known)}"
            )
        hints = typing.get_type_hints(self.settings_cls)
        values = {k: _coerce(self.name, k, v, hints[k]) for k, v in overrides.items()}
        settings = self.settings_cls(**values)
        settings.check()
        return settings

    def describe_settings(self) -> list[dict[str, Any]]:
        """Name, default, type and meaning of every setting (for --help and the app)."""
        hints = typing.get_type_hints(self.settings_cls)
        return [{"name": f.name, "default": f.default, "type": _type_name(hints[f.name]),
                 "help": f.metadata.get("help", "")} for f in fields(self.settings_cls)]


def _type_name(t: Any) -> str:
    return getattr(t, "__name__", str(t))


def _coerce(method: str, key: str, value: Any, typ: Any) -> Any:
    """Convert a CLI/app string to the setting's type, with a one-line error when it is not one."""
    if not isinstance(value, str):
        if typ is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return value
    try:
        if typ is bool:
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if typ is int:
            return int(value)
        if typ is float:
            return float(value)
    except ValueError:
        raise UnlearnError(
            f"setting '{key}' of method '{method}' must be a {_type_name(typ)}, got '{value}'"
        ) from None
    return value


# ------------------------------------------------------------ shared settings and losses


@dataclass
class BaseSettings(TrainSettings):
    """Settings every method has; each method overrides the defaults that suit it."""

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
    recalibrate_bn: bool = doc(False, "re-estimate BatchNorm statistics on the retain set after unlearning")


def random_other_labels(y: torch.Tensor, num_classes: int, generator: torch.Generator) -> torch.Tensor:
    """A uniformly random label different from each true label (RL, SalUn, RBM).

    Drawn where ``generator`` lives: a generator on the labels' GPU avoids a
    host-to-device copy per step, which would wait for the GPU's whole queue.
    """
    shift = torch.randint(1, num_classes, y.shape, generator=generator, device=generator.device).to(y.device)
    return (y + shift) % num_classes


def ce(model: nn.Module, xy: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    from ..engine import forward_logits

    x, y = xy
    return F.cross_entropy(forward_logits(model, x).float(), y)


def finish(ctx: MethodContext, settings: BaseSettings) -> nn.Module:
    """Post-processing every method shares (optional BatchNorm re-estimation on D_r)."""
    if getattr(settings, "recalibrate_bn", False):
        ctx.engine.recalibrate_bn(ctx.model, ctx.data.retain_train, ctx.data.normalizer, settings.batch_size)
    return ctx.model


__all__ = [
    "BaseSettings", "Method", "MethodContext", "ce", "doc", "finish", "random_other_labels",
]
