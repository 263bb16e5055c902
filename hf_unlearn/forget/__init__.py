"""Forget requests: the kinds (one module each), their registry, and ``ForgetSpec``."""

from __future__ import annotations

from . import classwise, column_filter, ids, indices, random_draw
from .kind import (
    ForgetKind,
    KindInput,
    TestRule,
    TrainingSplit,
    all_kinds,
    available_kinds,
    get_kind,
    register_kind,
    unregister_kind,
)
from .spec import ForgetSpec, common_inputs, form_name, select_forget, spec_from_form

for _module in (classwise, random_draw, indices, column_filter, ids):
    register_kind(_module.KIND)

__all__ = ["ForgetKind", "ForgetSpec", "KindInput", "TestRule", "TrainingSplit", "all_kinds", "available_kinds",
           "common_inputs", "form_name", "get_kind", "register_kind", "select_forget", "spec_from_form",
           "unregister_kind"]
