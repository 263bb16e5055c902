"""``none``: leave the model as it is, the baseline every edit must beat.

An edit that moves the model further from Retrain than it already was serves a
deletion request worse than no edit. ``compare`` always runs ``none`` so that
the table shows that baseline, and a tuner that finds nothing better returns it.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from .base import Method, MethodContext

#: the baseline's name, which ``compare``, the tuner and the verdicts look for
NAME = "none"


@dataclass
class NoneSettings:
    """``none`` has nothing to set."""

    def check(self) -> None:
        return None


def run(ctx: MethodContext, _settings: NoneSettings) -> nn.Module:
    return ctx.model


METHOD = Method(
    name=NAME,
    title="None (leave the model as it is)",
    summary="Return the untouched model: the baseline an unlearning edit has to beat.",
    settings_cls=NoneSettings,
    run=run,
    needs_forget=False,
)
