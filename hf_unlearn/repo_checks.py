"""What a model or dataset repo holds, checked before anything in it is loaded, decoded or run.

transformers and datasets will happily import a repo's own Python (``auto_map``, loading scripts) when asked,
prompt for it on a terminal when not told, unpickle a ``.bin`` checkpoint, or build a model from a config that
lies about its weights and only then fail with a page of load report. A public Space must do none of that.
So the small JSON files a repo starts with (``config.json``, ``preprocessor_config.json``, a safetensors
header, the file list) are read first, as data, and anything that needs code, pickles, a decoder outside the
safe list or more memory than the limits allow is refused here in one line.

What is still loaded is loaded safely: weights as safetensors, or a ``pytorch_model.bin`` through
transformers, which reads it with PyTorch's ``weights_only`` unpickler (plain tensors; a pickle that would
run code is refused by it, and reported here as what it is).
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import UnlearnError

#: a config or processor file larger than this is not a config
MAX_JSON_BYTES = 1 << 20
#: a safetensors header larger than this is a hostile file (the format itself caps it at 100 MB)
MAX_SAFETENSORS_HEADER = 16 << 20
#: the largest side an image processor may resize to (a 100,000-pixel side would allocate tens of GB per image)
MAX_PROCESSOR_SIDE = 4096
#: architectures whose processor is described inside config.json (timm's pretrained_cfg), not in its own file
PROCESSOR_IN_CONFIG = ("timm_wrapper",)
SAFE_WEIGHTS = ("model.safetensors", "model.safetensors.index.json")
PICKLE_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json")
#: weight formats transformers no longer reads, or that are only ever a pickle
OTHER_WEIGHTS = {"tf_model.h5": "TensorFlow", "flax_model.msgpack": "Flax", "model.ckpt.index": "TensorFlow",
                 ".pkl": "pickle", ".pickle": "pickle", ".pt": "PyTorch pickle", ".pth": "PyTorch pickle",
                 ".ckpt": "checkpoint pickle", ".joblib": "joblib pickle", ".onnx": "ONNX", ".keras": "Keras"}


def _json_file(path: Path, what: str, source: str) -> dict[str, Any]:
    if path.stat().st_size > MAX_JSON_BYTES:
        raise UnlearnError(f"model '{source}': its {what} is {path.stat().st_size:,} bytes, which no real one is: "
                           "choose another model")
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise UnlearnError(f"model '{source}': its {what} is not JSON: fix the file or choose another model") from None
    if not isinstance(value, dict):
        raise UnlearnError(f"model '{source}': its {what} is not a JSON object: fix the file or choose another model")
    return value


def _custom_code(source: str, what: str, detail: str) -> UnlearnError:
    return UnlearnError(f"model '{source}' needs its own Python code ({detail} in {what}), and hf-unlearn never runs "
                        "a repo's code: choose a model built from a transformers class (no auto_map)")


def check_config(config: dict[str, Any], source: str) -> None:
    """The model's config: a transformers architecture, no custom code, and inputs the data pipeline makes."""
    from transformers import CONFIG_MAPPING

    if config.get("auto_map"):
        raise _custom_code(source, "config.json", "auto_map")
    model_type = config.get("model_type")
    if not model_type or model_type not in CONFIG_MAPPING:
        raise UnlearnError(f"model '{source}' has the architecture '{model_type or '(none)'}', which transformers does "
                           "not know (it would need the repo's own code): choose a model transformers can build")
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES

    if model_type not in MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES:
        raise UnlearnError(f"'{source}' is not an image-classification model transformers can load (its architecture "
                           f"is {model_type}): choose a model with an image-classification head")
    channels = config.get("num_channels", 3)
    if channels not in (1, 3):
        raise UnlearnError(f"model '{source}' takes {channels} input channels, but images come as grey (1) or RGB (3): "
                           "choose a model for grey or colour images")


def check_processor(processor: dict[str, Any], source: str, channels: int) -> None:
    """The image processor's config: a transformers class, a sane output size, a mean and std per channel."""
    import transformers

    if processor.get("auto_map"):
        raise _custom_code(source, "preprocessor_config.json", "auto_map")
    kind = processor.get("image_processor_type")
    if kind and not hasattr(transformers, kind) and not hasattr(transformers, kind.removesuffix("Fast")):
        raise UnlearnError(f"model '{source}' names the image processor '{kind}', which is not a transformers class "
                           "(it would need the repo's own code): choose a model with a standard processor")
    for field in ("size", "crop_size"):
        value = processor.get(field)
        sides = value.values() if isinstance(value, dict) else [value]
        for side in sides:
            if isinstance(side, (int, float)) and side > MAX_PROCESSOR_SIDE:
                raise UnlearnError(f"model '{source}': its image processor resizes images to {side:,} pixels a side "
                                   f"({field}), beyond the {MAX_PROCESSOR_SIDE:,} hf-unlearn accepts: fix "
                                   "preprocessor_config.json or choose another model")
    if processor.get("do_normalize", True):
        for field in ("image_mean", "image_std"):
            value = processor.get(field)
            if isinstance(value, list) and len(value) not in (1, channels):
                raise UnlearnError(f"model '{source}': its image processor has {len(value)} {field} values for a "
                                   f"{channels}-channel model: fix preprocessor_config.json")
        std = processor.get("image_std")
        if isinstance(std, list) and any(not isinstance(s, (int, float)) or s <= 0 for s in std):
            raise UnlearnError(f"model '{source}': its image processor's image_std holds {std}, and every value must "
                               "be positive (it divides by them): fix preprocessor_config.json")


def safetensors_shapes(path: Path, source: str) -> dict[str, list[int]]:
    """Tensor name → shape, from a safetensors header alone (the tensors are not read)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        length = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
        if not 0 < length <= min(MAX_SAFETENSORS_HEADER, size - 8):
            raise UnlearnError(f"model '{source}': {path.name} is damaged or hostile (its header claims {length:,} "
                               f"bytes of a {size:,}-byte file): choose another model")
        try:
            header = json.loads(f.read(length))
        except ValueError:
            raise UnlearnError(f"model '{source}': {path.name} has a header that is not JSON: it is damaged; "
                               "choose another model") from None
    return {k: list(v.get("shape", [])) for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)}


def check_weights_fit(config: dict[str, Any], shards: list[Path], source: str) -> None:
    """A config that lies (a label count its head does not have, another width) is refused from the headers, on
    a model skeleton that allocates nothing, before transformers loads a single tensor."""
    import torch
    from transformers import CONFIG_MAPPING, AutoModelForImageClassification

    stored: dict[str, list[int]] = {}
    for shard in shards:
        stored.update(safetensors_shapes(shard, source))
    try:
        model_config = CONFIG_MAPPING[config["model_type"]].from_dict(config)
        with torch.device("meta"):
            skeleton = AutoModelForImageClassification.from_config(model_config)
    except (ValueError, TypeError, KeyError) as exc:
        raise UnlearnError(f"model '{source}': its config.json does not describe an image classifier transformers can "
                           f"build ({str(exc).splitlines()[0][:120]}): choose another model") from None
    expected = {k: list(v.shape) for k, v in skeleton.state_dict().items()}
    prefix = getattr(skeleton, "base_model_prefix", "")
    for name, shape in stored.items():
        own = expected.get(name, expected.get(f"{prefix}.{name}") if prefix else None)
        if own is not None and own != shape:
            labels = len(config.get("id2label") or {}) or config.get("num_labels")
            raise UnlearnError(f"model '{source}': its weights do not fit its config.json ({name} is "
                               f"{'×'.join(map(str, shape))} in the checkpoint, {'×'.join(map(str, own))} by the "
                               f"config, which declares {labels} labels): the config is wrong for these weights; "
                               "fix it or choose another model")


def check_model_files(files: list[str], source: str) -> str:
    """Which weights a repo has: safetensors, or a pickle-based ``.bin`` (read in weights-only mode); anything
    else is refused. Returns ``"safetensors"`` or ``"bin"``."""
    top = {f for f in files if "/" not in f}
    if top & set(SAFE_WEIGHTS):
        return "safetensors"
    if top & set(PICKLE_WEIGHTS):
        return "bin"
    found = sorted({name for f in top for suffix, name in OTHER_WEIGHTS.items() if f.endswith(suffix)})
    has = f"it has {' and '.join(found)} weights only" if found else "it has no weights file"
    raise UnlearnError(f"model '{source}': {has}, and hf-unlearn loads model.safetensors (or pytorch_model.bin in "
                       "PyTorch's weights-only mode): save the model with save_pretrained, or choose another")


def check_model_files_in(source: str, files: list[str], fetch: Callable[[str], Path], processor: bool,
                         missing: dict[str, str]) -> None:
    """Every check on a model, in the order that fetches least first: its config, its processor's config, its
    file list, then its weights' headers. ``fetch(name)`` gives a file's local path (a folder's file, or a Hub
    download); ``missing`` says what to do when the config or the processor is absent (a folder's owner saves
    one; a Hub repo's user picks another model)."""
    if "config.json" not in files:
        raise UnlearnError(missing["config"])
    config = _json_file(fetch("config.json"), "config.json", source)
    check_config(config, source)
    if processor and config.get("model_type") not in PROCESSOR_IN_CONFIG:
        if "preprocessor_config.json" not in files:
            raise UnlearnError(f"model '{source}' has no image processor (no preprocessor_config.json), so its inputs "
                               f"cannot be made: {missing['processor']}")
        check_processor(_json_file(fetch("preprocessor_config.json"), "preprocessor_config.json", source), source,
                        int(config.get("num_channels", 3)))
    if check_model_files(files, source) == "safetensors":
        if "model.safetensors" in files:  # what transformers reads when both are there
            shards = [fetch("model.safetensors")]
        else:
            index = json.loads(fetch("model.safetensors.index.json").read_text())
            shards = [fetch(n) for n in sorted(set(index.get("weight_map", {}).values()))]
        check_weights_fit(config, shards, source)


def check_model_folder(folder: Path, source: str, processor: bool = True) -> None:
    """The checks on a model's folder (a local one, or a cached Hub snapshot), before it is loaded."""
    check_model_files_in(source, [p.name for p in folder.iterdir() if p.is_file()], lambda name: folder / name,
                         processor, {"config": f"'{source}' is not a model directory (no config.json): save one with "
                                               "save_pretrained",
                                     "processor": "save the processor beside the model (processor.save_pretrained)"})


def check_hub_model(repo_id: str, revision: str | None, token: str | None, processor: bool = True) -> None:
    """The same checks on a Hub model: its file list and small JSON files first (kilobytes), then the weights'
    headers once the weights are in the local Hub cache (from_pretrained reuses them; nothing is fetched twice)."""
    from huggingface_hub import HfApi, hf_hub_download

    from .hub import with_retries

    info = with_retries(lambda: HfApi(token=token).model_info(repo_id, revision=revision), "model", repo_id)

    def fetch(name: str) -> Path:
        return Path(with_retries(lambda: hf_hub_download(repo_id, name, revision=revision, token=token),
                                 "model", repo_id))

    check_model_files_in(repo_id, [s.rfilename for s in info.siblings or []], fetch, processor,
                         {"config": f"model '{repo_id}' has no config.json, so it is not a transformers model: "
                                    "choose another",
                          "processor": "choose a model that ships one"})


def check_dataset_files(files: list[str], source: str) -> None:
    """A dataset that comes as a loading script (``x.py``) needs its code run to produce any row: refused."""
    scripts = sorted(f for f in files if "/" not in f and f.endswith(".py"))
    if scripts:
        raise UnlearnError(f"dataset '{source}' comes with a loading script ({scripts[0]}), and hf-unlearn never runs "
                           "a repo's code: use a dataset stored as data files (parquet, or images in folders)")


def check_local_dataset(path: str) -> None:
    if os.path.isdir(path):
        check_dataset_files(os.listdir(path), path)
