"""The catalogue's hostile cases (docs/bad_inputs.md, "Hostile inputs"): what a careless or hostile visitor of a
public Space sends. Each is refused before it costs anything, in one line, with nothing written, through the CLI
(which calls the API) and, for a sample, through the app; none runs a repo's code or unpickles anything.

Files are built the way such files really look: headers that declare more pixels than the file holds, real
animations and multi-page TIFFs, PostScript and PDF bytes, 16-bit PNGs, pickles whose ``__reduce__`` runs a
shell command, configs whose ``auto_map`` points at a module that would write a marker file if imported.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch
from PIL import Image
from test_catalogue import Ctx, _base, _png, _run

MARKER = "PWNED"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_declaring(width: int, height: int) -> bytes:
    """A 100-byte PNG whose header declares ``width`` × ``height`` grey pixels (the data is a few zero rows)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + _chunk(b"IEND", b""))


def png_text_bomb() -> bytes:
    """An 8 × 8 PNG with a compressed text chunk that inflates to 64 MB (a few KB on disk)."""
    base = _png(Image.new("L", (8, 8)))
    ztxt = _chunk(b"zTXt", b"Comment\0\0" + zlib.compress(b"A" * (64 << 20), 9))
    return base[:33] + ztxt + base[33:]


def jpeg_declaring(side: int) -> bytes:
    """A real 8 × 8 JPEG with its frame header patched to say ``side`` × ``side``."""
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buf, format="JPEG")
    data = bytearray(buf.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", side, side)
    return bytes(data)


def animated(fmt: str, frames: int) -> bytes:
    images = [Image.new("L", (8, 8), color=i % 256) for i in range(frames)]
    buf = io.BytesIO()
    images[0].save(buf, format=fmt, save_all=True, append_images=images[1:])
    return buf.getvalue()


def wide(mode: str, fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((8, 8), 40000 if mode == "I;16" else 0.5,
                            dtype=np.uint16 if mode == "I;16" else np.float32), mode=mode).save(buf, format=fmt)
    return buf.getvalue()


def _row(data: bytes | None, path: str | None = None) -> Callable[[list[dict]], None]:
    def edit(images: list[dict]) -> None:
        images[6] = {"bytes": data, "path": path}
    return edit


def _truncated() -> bytes:
    data = _png(Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)))
    return data[: len(data) // 2]


class Evil:
    """Unpickling this runs a shell command that writes the marker (what a hostile checkpoint does)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def model_variant(ctx: Ctx, edit: Callable[[Path], None]) -> str:
    folder = ctx.tmp / "model"
    shutil.copytree(ctx.model, folder)
    edit(folder)
    return str(folder)


def _edit_json(name: str, change: Callable[[dict], None]) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        value = json.loads((folder / name).read_text())
        change(value)
        (folder / name).write_text(json.dumps(value))
    return edit


def _auto_map(folder: Path) -> None:
    _edit_json("config.json", lambda c: c.update(auto_map={
        "AutoConfig": "evil.EvilConfig", "AutoModelForImageClassification": "evil.EvilModel"}))(folder)
    (folder / "evil.py").write_text(f"open({str(folder.parent / MARKER)!r}, 'w').write('ran')\n")


def _processor_auto_map(folder: Path) -> None:
    _edit_json("preprocessor_config.json",
               lambda c: c.update(auto_map={"AutoImageProcessor": "evil.EvilProcessor"}))(folder)
    (folder / "evil.py").write_text(f"open({str(folder.parent / MARKER)!r}, 'w').write('ran')\n")


def _pickle_payload(folder: Path) -> None:
    (folder / "model.safetensors").unlink()
    torch.save({"weights": Evil(folder.parent / MARKER)}, folder / "pytorch_model.bin")


def _pickle_plain(folder: Path) -> None:
    from safetensors.torch import load_file

    state = load_file(folder / "model.safetensors")
    (folder / "model.safetensors").unlink()
    torch.save(state, folder / "pytorch_model.bin")


def _weights_renamed(name: str) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        (folder / "model.safetensors").rename(folder / name)
    return edit


def _header_bomb(folder: Path) -> None:
    path = folder / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(struct.pack("<Q", 10**12) + data[8:])


def _labels_lie(c: dict) -> None:
    c["id2label"] = {str(i): str(i) for i in range(5)}
    c["label2id"] = {str(i): i for i in range(5)}


def _script_dataset(ctx: Ctx) -> str:
    folder = Path(ctx.write(ctx.small()))
    (folder / "data.py").write_text(f"open({str(ctx.tmp / MARKER)!r}, 'w').write('ran')\n")
    return str(folder)


def _huge_label(ctx: Ctx) -> str:
    labels = [int(v) for v in ctx.small()["train"]["label"]]
    labels[0] = 10**9
    return ctx.with_labels(labels, datasets.Value("int64"))


@dataclass
class Hostile:
    id: str
    args: Callable[[Ctx], list[str]]
    expect: str  # a fragment of the one-line error, or "ok"
    env: dict[str, str] = field(default_factory=dict)


def _data(edit: Callable[[list[dict]], None]) -> Callable[[Ctx], list[str]]:
    return lambda c: _base(c, "--forget-class", "3", dataset=c.with_train_images(edit))


def _model(edit: Callable[[Path], None]) -> Callable[[Ctx], list[str]]:
    return lambda c: _base(c, "--forget-class", "3", model=model_variant(c, edit))


ROW = "row 6 of the train split: "
CASES = [
    # images
    Hostile("png-declares-150-megapixels", _data(_row(png_declaring(12_300, 12_300))),
            ROW + "the image is 12,300 × 12,300 pixels, more than the 100,000,000 allowed"),
    Hostile("png-decompression-bomb", _data(_row(png_declaring(50_000, 50_000))),
            ROW + "the image declares more pixels than Pillow will decode (a decompression bomb"),
    Hostile("jpeg-declares-65500-square", _data(_row(jpeg_declaring(65_500))),
            ROW + "the image declares more pixels than Pillow will decode"),
    Hostile("png-text-chunk-bomb", _data(_row(png_text_bomb())), ROW + "the image cannot be decoded"),
    Hostile("gif-500-frames", _data(_row(animated("GIF", 500))), ROW + "the image has several frames"),
    Hostile("animated-png", _data(_row(animated("PNG", 3))), ROW + "the image has several frames"),
    Hostile("tiff-three-pages", _data(_row(animated("TIFF", 3))), ROW + "the image has several frames"),
    Hostile("postscript-image", _data(_row(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\n")),
            ROW + "the image is PostScript (EPS), a format hf-unlearn does not decode"),
    Hostile("pdf-image", _data(_row(b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n")), ROW + "the image is PDF"),
    Hostile("svg-image", _data(_row(b'<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"/>')),
            ROW + "the image is SVG"),
    Hostile("png-16-bit", _data(_row(wide("I;16", "PNG"))), ROW + "the image has I;16 pixels (16-bit or floating"),
    Hostile("tiff-float", _data(_row(wide("F", "TIFF"))), ROW + "the image has F pixels"),
    Hostile("truncated-png", _data(_row(_truncated())), ROW + "the image cannot be decoded"),
    Hostile("image-path-is-a-device", _data(_row(None, "/dev/zero")),
            ROW + "the image path '/dev/zero' is not a regular file"),
    # repos that need code
    Hostile("model-auto-map", _model(_auto_map), "needs its own Python code (auto_map in config.json)"),
    Hostile("model-unknown-architecture", _model(_edit_json("config.json", lambda c: c.update(model_type="evil-net"))),
            "has the architecture 'evil-net', which transformers does not know"),
    Hostile("processor-auto-map", _model(_processor_auto_map),
            "needs its own Python code (auto_map in preprocessor_config.json)"),
    Hostile("processor-custom-class", _model(_edit_json("preprocessor_config.json",
                                                        lambda c: c.update(image_processor_type="EvilProcessor"))),
            "names the image processor 'EvilProcessor', which is not a transformers class"),
    Hostile("dataset-loading-script", lambda c: _base(c, "--forget-class", "3", dataset=_script_dataset(c)),
            "comes with a loading script (data.py), and hf-unlearn never runs a repo's code"),
    # pickle-based checkpoints
    Hostile("pickle-bin-with-payload", _model(_pickle_payload),
            "its pytorch_model.bin holds Python objects besides tensors"),
    Hostile("pickle-bin-plain-tensors", _model(_pickle_plain), "ok"),
    Hostile("tensorflow-weights-only", _model(_weights_renamed("tf_model.h5")),
            "it has TensorFlow weights only, and hf-unlearn loads model.safetensors"),
    Hostile("pt-pickle-weights-only", _model(_weights_renamed("model.pt")), "it has PyTorch pickle weights only"),
    Hostile("safetensors-header-bomb", _model(_header_bomb), "model.safetensors is damaged or hostile"),
    # configs that lie
    Hostile("config-label-count-lies", _model(_edit_json("config.json", _labels_lie)),
            "its weights do not fit its config.json (classifier.1.bias is 10 in the checkpoint, 5 by the config, "
            "which declares 5 labels)"),
    Hostile("config-width-lies", _model(_edit_json("config.json", lambda c: c.update(hidden_sizes=[48, 64]))),
            "its weights do not fit its config.json"),
    Hostile("config-seven-channels", _model(_edit_json("config.json", lambda c: c.update(num_channels=7))),
            "takes 7 input channels, but images come as grey (1) or RGB (3)"),
    Hostile("config-not-json", _model(lambda f: (f / "config.json").write_text("{model_type: resnet")),
            "its config.json is not JSON"),
    Hostile("processor-missing", _model(lambda f: (f / "preprocessor_config.json").unlink()),
            "has no image processor (no preprocessor_config.json)"),
    Hostile("processor-giant-size", _model(_edit_json("preprocessor_config.json",
                                                      lambda c: c.update(size={"height": 100_000, "width": 8}))),
            "its image processor resizes images to 100,000 pixels a side"),
    Hostile("processor-zero-std", _model(_edit_json("preprocessor_config.json",
                                                    lambda c: c.update(image_std=[0.5, 0.0, 0.5]))),
            "its image processor's image_std holds [0.5, 0.0, 0.5]"),
    Hostile("processor-mean-per-channel", _model(_edit_json("preprocessor_config.json",
                                                            lambda c: c.update(image_mean=[0.5, 0.5]))),
            "its image processor has 2 image_mean values for a 3-channel model"),
    # datasets beyond the run's limits
    Hostile("rows-over-the-limit", lambda c: _base(c, "--forget-class", "3"),
            "the 'train' split has 200 rows, more than the 100 a job may use here (HF_UNLEARN_MAX_ROWS)",
            {"HF_UNLEARN_MAX_ROWS": "100"}),
    Hostile("decoded-bytes-over-the-limit", lambda c: _base(c, "--forget-class", "3"),
            "decoding this dataset would take 0.2 MB (260 images of 3 × 16 × 16 bytes), more than the 0.1 MB",
            {"HF_UNLEARN_MAX_DECODED_MB": "0.1"}),
    Hostile("label-id-of-a-billion", lambda c: _base(c, "--forget-class", "3", dataset=_huge_label(c)),
            "label column 'label' declares 1,000,000,001 classes, more than the 100,000 allowed"),
    Hostile("job-over-its-time-limit", lambda c: _base(c, "--forget-class", "3", "--method", "retrain",
                                                       "--epochs", "100000"),
            "the job ran for more than 2 s, the limit per job here (HF_UNLEARN_MAX_JOB_SECONDS)",
            {"HF_UNLEARN_MAX_JOB_SECONDS": "2"}),
]


@pytest.fixture
def ctx(demo_assets, digits, tmp_path) -> Ctx:
    return Ctx(demo_assets[0], digits, tmp_path)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_case(case: Hostile, ctx: Ctx, capsys, monkeypatch):
    for var, value in case.env.items():
        monkeypatch.setenv(var, value)
    args = case.args(ctx)
    before = set(ctx.tmp.iterdir())
    code, err, out = _run(ctx, args, capsys)
    assert not (ctx.tmp / MARKER).exists(), "a repo's code or a pickle ran"
    if case.expect == "ok":
        assert code == 0, err
        assert (out / "model.safetensors").exists()
        return
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert case.expect in err[0], err[0]
    assert not ({p.name for p in set(ctx.tmp.iterdir()) - before}), "left something behind"


# ------------------------------------------------------------------ the same refusals on the Hub, before the weights


def _upload(folder: Path, repo_id: str, repo_type: str = "model") -> None:
    from conftest import TOKEN
    from huggingface_hub import HfApi

    api = HfApi(token=TOKEN)
    api.create_repo(repo_id, repo_type=repo_type)
    api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type=repo_type)


def test_a_hub_model_that_needs_code_is_refused_before_its_weights_are_downloaded(hub, demo_assets, tmp_path):
    from conftest import TOKEN

    from hf_unlearn import UnlearnError, unlearn

    folder = tmp_path / "model"
    shutil.copytree(demo_assets[0], folder)
    _auto_map(folder)
    _upload(folder, "alice/evil-model")
    _upload(demo_assets[1], "alice/digits", "dataset")
    hub.state.log.clear()
    with pytest.raises(UnlearnError) as e:
        unlearn("alice/evil-model", "alice/digits", "3", token=TOKEN, method="ft", epochs=1)
    assert "needs its own Python code (auto_map in config.json)" in str(e.value) and "\n" not in str(e.value)
    fetched = [path for method, path, _ in hub.state.log if method == "GET" and "/resolve/" in path]
    assert fetched and all(path.endswith("/config.json") for path in fetched), fetched  # no weights, no evil.py
    assert not (tmp_path / MARKER).exists()


def test_a_hub_dataset_with_a_loading_script_is_refused_before_any_download(hub, demo_assets, tmp_path):
    from conftest import TOKEN

    from hf_unlearn import UnlearnError, unlearn

    data = tmp_path / "data"
    shutil.copytree(demo_assets[1], data)
    (data / "digits.py").write_text(f"open({str(tmp_path / MARKER)!r}, 'w').write('ran')\n")
    _upload(demo_assets[0], "alice/tiny")
    _upload(data, "alice/scripted", "dataset")
    hub.state.log.clear()
    with pytest.raises(UnlearnError) as e:
        unlearn("alice/tiny", "alice/scripted", "3", token=TOKEN, method="ft", epochs=1)
    assert "comes with a loading script (digits.py)" in str(e.value)
    assert not [p for m, p, _ in hub.state.log if m == "GET" and "/datasets/" in p and "/resolve/" in p]
    assert not (tmp_path / MARKER).exists()


# ------------------------------------------------------------------ the cache never unpickles


def test_a_pickle_planted_in_the_cache_folder_is_never_loaded(demo_assets, tmp_path, monkeypatch):
    """Pickles planted where the caches live (an old-style ``.pt`` tensor cache, a decoded set's array and a
    Retrain reference's outputs swapped for object arrays, their manifests made to match) are neither
    unpickled nor trusted: the run decodes and retrains again and measures the same."""
    from hf_unlearn import unlearn
    from hf_unlearn.demo import DEMO_RECIPE

    monkeypatch.setenv("HF_UNLEARN_CACHE", str(tmp_path / "cache"))
    tensors = tmp_path / "cache" / "tensors"

    def demo():
        return unlearn(str(demo_assets[0]), str(demo_assets[1]), "3", method="ft", epochs=1, reference="retrain",
                       retrain_settings=DEMO_RECIPE, seed=0)

    first = demo()
    marker = tmp_path / MARKER
    payload = np.array([Evil(marker)], dtype=object)
    torch.save({"pixels": Evil(marker)}, tensors / "0123456789abcdef01234567.pt")  # the old cache's file name
    planted = []
    for manifest in (tmp_path / "cache").glob("*/*/manifest.json"):
        entry = manifest.parent
        target = entry / ("pixels.npy" if (entry / "pixels.npy").exists() else "outputs.npz")
        if target.suffix == ".npy":
            np.save(target, payload, allow_pickle=True)
        else:
            np.savez(target, **{"forget/labels": payload})
        meta = json.loads(manifest.read_text())  # the manifest made to match: only the loader stands in the way
        from hf_unlearn.cache import _sha256

        meta["files"][target.name] = {"bytes": target.stat().st_size, "sha256": _sha256(target)}
        manifest.write_text(json.dumps(meta))
        planted.append(target.name)
    assert "pixels.npy" in planted and "outputs.npz" in planted

    def no_torch_load(*a, **k):
        raise AssertionError("torch.load was called on the cache")

    monkeypatch.setattr(torch, "load", no_torch_load)
    again = demo()
    assert not marker.exists()
    assert again.report.retrain["cached"] is False  # the planted reference was not trusted: retrained
    assert again.report.metrics["retrain"] == first.report.metrics["retrain"]
    assert again.report.metrics["unlearned"]["ta"] == first.report.metrics["unlearned"]["ta"]
    for entry in tensors.glob("*/pixels.npy"):
        assert np.load(entry, allow_pickle=False).dtype == np.uint8  # rewritten as plain tensors


# ------------------------------------------------------------------ through the app


APP_CASES = ["model-auto-map", "pickle-bin-with-payload", "png-decompression-bomb", "rows-over-the-limit"]


@pytest.mark.parametrize("case_id", APP_CASES)
def test_the_app_refuses_hostile_input_in_one_line(case_id, ctx, monkeypatch):
    from conftest import NO_FILES
    from test_app import client, error_message, free_port

    from hf_unlearn.ui import build_app, queued

    case = next(c for c in CASES if c.id == case_id)
    for var, value in case.env.items():
        monkeypatch.setenv(var, value)
    args = case.args(ctx)
    model, dataset = args[args.index("--model") + 1], args[args.index("--dataset") + 1]
    app = queued(build_app())
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        out = client(f"http://127.0.0.1:{port}/").predict(
            api_name="/run", **NO_FILES, model=model, dataset=dataset, forget_kind="class", forget_classes=["3"],
            method="ft", epochs=1, with_retrain=False)
    finally:
        app.close()
    message = error_message(out[0])
    assert case.expect in message and "\n" not in message and "Traceback" not in out[0], message
    assert not (ctx.tmp / MARKER).exists()
