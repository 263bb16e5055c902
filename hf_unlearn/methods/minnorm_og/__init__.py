"""MinNorm-OG and the projection it alone uses (``span``, ``layer_grads``, ``gradients``)."""

from __future__ import annotations

from .method import METHOD, MinNormSettings, run, stratified_rows

__all__ = ["METHOD", "MinNormSettings", "run", "stratified_rows"]
