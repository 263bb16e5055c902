"""The bad-input catalogue (docs/bad_inputs.md): every case through the CLI, one test each.

A rejected case must exit with code 2, print one line starting with
``error:`` that contains the expected explanation, leave no output
directory (and no hidden temporary one) behind, and never print a
traceback. An accepted case ("ok") must exit 0 and write a checkpoint.
The docs table and this list must name the same cases.
"""

from __future__ import annotations

import errno
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np
import pytest
from PIL import Image

from hf_unlearn.cli import main

DOC = Path(__file__).resolve().parents[1] / "docs" / "bad_inputs.md"


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


@dataclass
class Ctx:
    """What a case may use: the demo model, a small slice of the digits data, a scratch folder."""

    model: Path
    digits: datasets.DatasetDict
    tmp: Path

    def small(self) -> datasets.DatasetDict:
        return datasets.DatasetDict({"train": self.digits["train"].select(range(200)),
                                     "test": self.digits["test"].select(range(60))})

    def write(self, dsd: datasets.DatasetDict, name: str = "data") -> str:
        folder = self.tmp / name
        folder.mkdir()
        for split, ds in dsd.items():
            ds.to_parquet(str(folder / f"{split}.parquet"))
        return str(folder)

    def with_train_images(self, edit: Callable[[list[dict]], None]) -> str:
        """The small set with the training images' raw bytes edited in place (row dicts {bytes, path})."""
        dsd = self.small()
        raw = dsd["train"].cast_column("image", datasets.Image(decode=False))
        images = list(raw["image"])
        edit(images)
        train = raw.remove_columns("image").add_column("image", images).cast_column("image", datasets.Image())
        return self.write(datasets.DatasetDict({"train": train, "test": dsd["test"]}))

    def with_labels(self, values: list, feature: datasets.features.Feature) -> str:
        dsd = self.small()
        train = dsd["train"].remove_columns("label").add_column("label", values)
        train = train.cast_column("label", feature)
        test = dsd["test"].cast_column("label", datasets.Value("int64")) if not isinstance(
            feature, datasets.ClassLabel) else dsd["test"]
        if isinstance(feature, datasets.Value) and feature.dtype == "string":
            test = test.map(lambda r: {"label": str(r["label"])}).cast_column("label", feature)
        return self.write(datasets.DatasetDict({"train": train, "test": test}))


def _file(ctx: Ctx, name: str, text: str) -> str:
    path = ctx.tmp / name
    path.write_text(text)
    return str(path)


def _tuned_ft(ctx: Ctx) -> str:
    from hf_unlearn.tuning import MethodTuning, Tuning

    tuning = Tuning({"kind": "class", "description": "class 3"}, [{"description": "class 7"}], {}, [0],
                    {"ft": MethodTuning("ft", {"epochs": 1}, 1.0, [1.0], None, 2.0, trials=1)})
    return str(tuning.save(ctx.tmp / "tuned.json"))


@dataclass
class Case:
    id: str
    args: Callable[[Ctx], list[str]]
    expect: str  # a fragment of the one-line error, or "ok"


def _base(ctx: Ctx, *extra: str, dataset: str | None = None, model: str | None = None) -> list[str]:
    return ["--model", model or str(ctx.model), "--dataset", dataset or ctx.write(ctx.small()), *extra]


def _binary_file(ctx: Ctx) -> str:
    path = ctx.tmp / "ids.png"
    path.write_bytes(_png(Image.new("RGB", (4, 4))))
    return str(path)


def _corrupt(images: list[dict]) -> None:
    images[5] = {"bytes": b"\x89PNG\r\n\x1a\n this is not an image", "path": None}


def _zero(images: list[dict]) -> None:
    images[7] = {"bytes": b"", "path": None}


def _huge(images: list[dict]) -> None:
    images[3] = {"bytes": _png(Image.new("L", (10_000, 10_000), color=128)), "path": None}


def _mixed(images: list[dict]) -> None:
    for i, mode in zip(range(4), ("L", "RGBA", "P", "RGB"), strict=True):
        img = Image.open(io.BytesIO(images[i]["bytes"])).convert(mode)
        images[i] = {"bytes": _png(img), "path": None}


def _index_file(ctx: Ctx, lines: list[str], name: str = "idx.txt") -> str:
    path = ctx.tmp / name
    path.write_text("\n".join(lines) + "\n")
    return "@" + str(path)


def _unicode(ctx: Ctx) -> list[str]:
    names = ["zéro", "один", "二", "🐱", "drei", "cinq", "ستة", "sept", "huit", "neuf"]
    labels = list(ctx.small()["train"]["label"])
    path = ctx.write(datasets.DatasetDict({
        "train": ctx.small()["train"].cast_column("label", datasets.ClassLabel(names=names)),
        "test": ctx.small()["test"].cast_column("label", datasets.ClassLabel(names=names)),
    }))
    assert len(labels) == 200
    return _base(ctx, "--forget-class", "🐱", "--reinit-head", dataset=path)


def _label_mismatch(ctx: Ctx) -> list[str]:
    small = ctx.small()
    keep = small.filter(lambda r: r["label"] < 3)
    three = keep.cast_column("label", datasets.ClassLabel(names=["0", "1", "2"]))
    return _base(ctx, "--forget-class", "1", dataset=ctx.write(three))


def _not_image(ctx: Ctx) -> list[str]:
    d = datasets.Dataset.from_dict({"image": list(range(20)), "label": [i % 10 for i in range(20)]})
    return _base(ctx, "--forget-class", "1", dataset=ctx.write(datasets.DatasetDict({"train": d, "test": d})))


def _no_image(ctx: Ctx) -> list[str]:
    d = datasets.Dataset.from_dict({"text": ["a", "b", "c", "d"], "label": [0, 1, 0, 1]})
    return _base(ctx, "--forget-class", "1", dataset=ctx.write(datasets.DatasetDict({"train": d, "test": d})))


def _no_label(ctx: Ctx) -> list[str]:
    dsd = ctx.small().remove_columns("label")
    return _base(ctx, "--forget-class", "1", dataset=ctx.write(dsd))


def _only_train(ctx: Ctx) -> list[str]:
    return _base(ctx, "--forget-class", "1", dataset=ctx.write(datasets.DatasetDict({"train": ctx.small()["train"]})))


def _empty_train(ctx: Ctx) -> list[str]:
    small = ctx.small()
    return _base(ctx, "--forget-class", "1", dataset=ctx.write(
        datasets.DatasetDict({"train": small["train"].select([]), "test": small["test"]})))


def _missing_labels(ctx: Ctx) -> list[str]:
    labels = [int(v) for v in ctx.small()["train"]["label"]]
    values: list = [None if i in (4, 9, 12) else v for i, v in enumerate(labels)]
    return _base(ctx, "--forget-class", "1", dataset=ctx.with_labels(values, datasets.Value("int64")))


def _string_labels(ctx: Ctx) -> list[str]:
    values = [str(int(v)) for v in ctx.small()["train"]["label"]]
    return _base(ctx, "--forget-class", "3", dataset=ctx.with_labels(values, datasets.Value("string")))


def _output_exists(ctx: Ctx) -> list[str]:
    out = ctx.tmp / "out"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    return _base(ctx, "--forget-class", "3")


def _output_not_writable(ctx: Ctx) -> list[str]:
    (ctx.tmp / "a-file").write_text("x")
    return _base(ctx, "--forget-class", "3", "--output", str(ctx.tmp / "a-file" / "out"))


CASES = [
    Case("malformed-repo-id", lambda c: _base(c, "--forget-class", "3", model="not a//valid repo"),
         "is neither a local folder nor a valid Hub repo id"),
    Case("model-path-missing", lambda c: _base(c, "--forget-class", "3", model="./no/such/model"),
         "model path './no/such/model' does not exist"),
    Case("dataset-path-missing", lambda c: _base(c, "--forget-class", "3", dataset="./no/such/data"),
         "dataset path './no/such/data' does not exist"),
    Case("non-image-dataset", _no_image, "has no image column (columns: text, label)"),
    Case("image-column-not-images", _not_image, "column 'image' does not hold images"),
    Case("no-label-column", _no_label, "no label column found"),
    Case("label-column-wrong-name", lambda c: _base(c, "--forget-class", "3", "--label-column", "fine"),
         "label column 'fine' not in the dataset; its columns are: image, label"),
    Case("corrupted-image-bytes", lambda c: _base(c, "--forget-class", "3", dataset=c.with_train_images(_corrupt)),
         "row 5 of the train split: the image cannot be decoded"),
    Case("zero-size-image", lambda c: _base(c, "--forget-class", "3", dataset=c.with_train_images(_zero)),
         "row 7 of the train split: the image is empty (0 bytes)"),
    Case("huge-image-10k", lambda c: _base(c, "--forget-class", "3", dataset=c.with_train_images(_huge)), "ok"),
    Case("mixed-grey-rgba-palette", lambda c: _base(c, "--forget-class", "3", dataset=c.with_train_images(_mixed)),
         "ok"),
    Case("string-labels", _string_labels, "ok"),
    Case("missing-label-values", _missing_labels, "label column 'label' has 3 missing values (rows 4, 9, 12)"),
    Case("unicode-class-names", _unicode, "ok"),
    Case("only-a-train-split", _only_train, "the dataset has no test split (it has: train): pass --test-split"),
    Case("empty-train-split", _empty_train, "has 0 rows: unlearning needs a non-empty training split"),
    Case("class-not-in-label-set", lambda c: _base(c, "--forget-class", "cat"),
         "class 'cat' is not in the label set; valid classes: 0, 1, 2"),
    Case("class-id-out-of-range", lambda c: _base(c, "--forget-class", "12"),
         "class id 12 is out of range: valid ids are 0..9"),
    Case("forget-selects-nothing", lambda c: _base(c, "--forget-filter", "label=42"), "the forget set is empty"),
    Case("forget-selects-everything", lambda c: _base(c, "--forget-class", "0,1,2,3,4,5,6,7,8,9"),
         "whole training split"),
    Case("forget-fraction-out-of-range", lambda c: _base(c, "--forget-fraction", "1.5"),
         "forget fraction must be between 0 and 1"),
    Case("no-forget-spec", lambda c: _base(c), "give exactly one forget specification"),
    Case("index-out-of-range", lambda c: _base(c, "--forget-indices", "1,99999"),
         "forget index 99999 is out of range: the training split has rows 0..199"),
    Case("index-duplicate", lambda c: _base(c, "--forget-indices", "4,5,4"), "forget index 4 is listed twice"),
    Case("index-negative", lambda c: _base(c, "--forget-indices", "3,-2"), "forget index -2 is out of range"),
    Case("index-non-numeric", lambda c: _base(c, "--forget-indices", "1,x"), "forget index 'x' is not an integer"),
    Case("index-file-missing", lambda c: _base(c, "--forget-indices", "@/no/such/indices.txt"),
         "cannot read the index file '/no/such/indices.txt': No such file or directory"),
    Case("index-file-two-million-rows",
         lambda c: _base(c, "--forget-indices", _index_file(c, [str(i) for i in range(2_000_000)])),
         "forget index 200 is out of range: the training split has rows 0..199"),
    Case("ids-unknown-column", lambda c: _base(c, "--forget-ids", "user_id=u1,u2"),
         "ID column 'user_id' not in the dataset; its columns are: image, label"),
    Case("ids-empty-list", lambda c: _base(c, "--forget-ids", "label= , "), "the list of 'label' IDs is empty"),
    Case("ids-file-not-text", lambda c: _base(c, "--forget-ids", "label=@" + _binary_file(c)),
         "is not a text file: give one ID per line (UTF-8 text) or a JSON list"),
    Case("ledger-not-json", lambda c: _base(c, "--forget-class", "3", "--ledger", _file(c, "ledger.json", "{oops")),
         "'ledger.json' is not JSON: give the file an earlier run (unlearning_ledger.json) wrote"),
    Case("model-label-count-mismatch", _label_mismatch, "--reinit-head"),
    Case("unknown-method", lambda c: _base(c, "--forget-class", "3", "--method", "magic"), "unknown method 'magic'"),
    Case("unknown-setting", lambda c: _base(c, "--forget-class", "3", "--set", "bogus=1"), "unknown setting 'bogus'"),
    Case("setting-not-a-number", lambda c: _base(c, "--forget-class", "3", "--set", "lr=fast"),
         "must be a float, got 'fast'"),
    Case("epochs-zero", lambda c: _base(c, "--forget-class", "3", "--epochs", "0"),
         "epochs must be a positive integer"),
    Case("rho-out-of-range", lambda c: _base(c, "--forget-class", "3", "--method", "rbm", "--set", "rho=1.5"),
         "must be strictly between 0 and 1, got 1.5"),
    Case("lambda-reg-out-of-range",
         lambda c: _base(c, "--forget-class", "3", "--method", "minnorm-og", "--set", "lambda_reg=2"),
         "lambda_reg must be in [0, 1]"),
    Case("retain-fraction-out-of-range", lambda c: _base(c, "--forget-class", "3", "--retain-fraction", "0"),
         "retain_fraction must be in (0, 1]"),
    Case("settings-not-json", lambda c: _base(c, "--forget-class", "3", "--settings", _file(c, "tuned.json", "{oops")),
         "'tuned.json' is not JSON: give the file hf-unlearn tune wrote"),
    Case("settings-not-a-tuning", lambda c: _base(c, "--forget-class", "3", "--settings",
                                                  _file(c, "report.json", '{"method": "ft"}')),
         "'report.json' is not an hf-unlearn tuned-settings file (write one with hf-unlearn tune)"),
    Case("settings-method-not-tuned", lambda c: _base(c, "--forget-class", "3", "--method", "salun", "--settings",
                                                      _tuned_ft(c)),
         "has tuned settings for ft, not for 'salun'"),
    Case("output-exists", _output_exists, "already exists and is not empty: choose another or pass --overwrite"),
    Case("output-not-writable", _output_not_writable, "cannot write to"),
]


@pytest.fixture
def ctx(demo_assets, digits, tmp_path) -> Ctx:
    return Ctx(demo_assets[0], digits, tmp_path)


def _run(ctx: Ctx, args: list[str], capsys) -> tuple[int, list[str], Path]:
    out = ctx.tmp / "out"
    argv = ["run", *args, "--epochs", "1", "--quiet"] if "--epochs" not in args else ["run", *args, "--quiet"]
    if "--output" not in argv:
        argv += ["--output", str(out)]
    code = main(argv)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    return code, captured.err.strip().splitlines(), out


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_catalogue_case(case: Case, ctx: Ctx, capsys):
    args = case.args(ctx)
    before = set(ctx.tmp.iterdir())
    code, err, out = _run(ctx, args, capsys)
    if case.expect == "ok":
        assert code == 0, err
        assert (out / "model.safetensors").exists() and (out / "report.json").exists()
        return
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert case.expect in err[0], err[0]
    leftovers = {p.name for p in set(ctx.tmp.iterdir()) - before}
    assert not leftovers, f"left behind: {leftovers}"
    if case.id == "output-exists":
        assert (out / "keep.txt").read_text() == "precious"


def test_disk_full_during_save_leaves_nothing(ctx: Ctx, capsys, monkeypatch):
    """ENOSPC in the middle of writing the checkpoint: one line, exit 2, no output, no temporary folder."""
    from transformers import PreTrainedModel

    def full(self, *a, **k):
        Path(a[0], "partial.bin").write_bytes(b"\0" * 1024)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(PreTrainedModel, "save_pretrained", full)
    code, err, out = _run(ctx, _base(ctx, "--forget-class", "3"), capsys)
    assert code == 2 and len(err) == 1 and "No space left on device" in err[0] and "nothing was written" in err[0]
    assert not out.exists() and not [p for p in ctx.tmp.iterdir() if p.name.startswith(".out")]


def test_interrupted_save_leaves_nothing(ctx: Ctx, capsys, monkeypatch):
    """Ctrl-C while the checkpoint is being written: exit 130, a one-line notice, no output folder."""
    from transformers import PreTrainedModel

    def interrupt(self, *a, **k):
        Path(a[0], "partial.bin").write_bytes(b"\0")
        raise KeyboardInterrupt

    monkeypatch.setattr(PreTrainedModel, "save_pretrained", interrupt)
    code, err, out = _run(ctx, _base(ctx, "--forget-class", "3"), capsys)
    assert code == 130 and len(err) == 1 and "interrupted; no output was written" in err[0]
    assert not out.exists() and not [p for p in ctx.tmp.iterdir() if p.name.startswith(".out")]


def test_docs_table_lists_every_case():
    text = DOC.read_text()
    documented = set(re.findall(r"^\| `([a-z0-9-]+)` \|", text, flags=re.M))
    from test_hostile import CASES as HOSTILE

    tested = {c.id for c in [*CASES, *HOSTILE]} | {"disk-full-during-save", "interrupted-save"}
    assert documented >= tested, f"undocumented: {sorted(tested - documented)}"
    count = re.search(r"(\d+) cases", text)
    assert count and int(count.group(1)) == len(documented)


def test_a_large_valid_index_file_is_read_quickly(ctx: Ctx):
    from hf_unlearn.forget.indices import parse_indices

    path = ctx.tmp / "many.txt"
    path.write_text("\n".join(str(i) for i in range(2_000_000)))
    rows = parse_indices("@" + str(path))
    assert len(rows) == 2_000_000 and rows[-1] == 1_999_999
    assert np.asarray(rows).dtype.kind == "i"
