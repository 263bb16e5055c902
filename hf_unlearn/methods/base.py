"""What a method is: a name, a settings dataclass with documented defaults, and a run function.

A method sees tensors and a model (through :class:`MethodContext`), never the
Hub or the UI. Settings are dataclasses so that the CLI flags, the app's
controls and the report are all generated from one description.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .. import fields
from ..data import UnlearnData
from ..engine import Engine, TrainSettings
from ..fields import doc


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
        """Defaults with ``overrides`` applied; strings (from the CLI or the app) are converted by field type."""
        settings = fields.build(self.settings_cls, overrides, f"method '{self.name}'")
        settings.check()
        return settings

    def describe_settings(self) -> list[dict[str, Any]]:
        """Name, default, type and meaning of every setting (for --help and the app)."""
        return fields.describe(self.settings_cls)


# ------------------------------------------------------------ shared settings and losses


@dataclass
class BaseSettings(TrainSettings):
    """Settings every method has: the engine's optimisation settings, and what happens after unlearning."""

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
