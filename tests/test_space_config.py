"""The Space metadata in README.md and requirements.txt are what a Gradio Space needs."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_readme_front_matter_describes_a_gradio_space_with_login():
    text = (ROOT / "README.md").read_text()
    assert text.startswith("---\n")
    meta = yaml.safe_load(text.split("---", 2)[1])
    import gradio

    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py" and (ROOT / meta["app_file"]).exists()
    assert meta["sdk_version"] == gradio.__version__
    assert meta["hf_oauth"] is True and "write-repos" in meta["hf_oauth_scopes"]
    assert meta["suggested_hardware"]


def test_requirements_cover_the_runtime_dependencies():
    reqs = {line.split(">=")[0].split("[")[0].strip().lower() for line in (ROOT / "requirements.txt").read_text()
            .splitlines() if line.strip() and not line.startswith("#")}
    assert {"torch", "transformers", "datasets", "huggingface-hub", "accelerate", "gradio", "scikit-learn",
            "evaluate", "matplotlib"} <= reqs
    assert "gradio[oauth]" in (ROOT / "requirements.txt").read_text()
