"""The Gradio app (``build_app``); its form is generated from the run configuration and the forget kinds."""

from __future__ import annotations

from .app import build_app, inspect_dataset, launch, on_space, queued
from .form import DEMO, keywords_from_form, resolve_sources

__all__ = ["DEMO", "build_app", "inspect_dataset", "keywords_from_form", "launch", "on_space", "queued",
           "resolve_sources"]
