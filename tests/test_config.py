"""One run configuration: the API, the CLI and the app build the same one; old reports load; the accelerate shim."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest

from hf_unlearn import ForgetSpec, RunConfig, UnlearnError, UnlearnReport, available_methods, get_method, unlearn
from hf_unlearn.config import TOP_LEVEL, config_keywords

DATA = Path(__file__).parent / "data"


def _app_form(model: str, dataset: str, **changes) -> dict:
    """What the app's Run button hands over for the form as a user left it (its defaults), with ``changes``."""
    form = {"model": model, "dataset": dataset, "revision": "", "dataset_config": "", "dataset_revision": "",
            "train_split": "train", "test_split": "", "image_column": "", "label_column": "", "forget_kind": "class",
            "forget_seed": 0.0, "forget_classes": ["3"], "forget_fraction": 0.1, "forget_stratified": False,
            "forget_indices": "", "forget_index_file": None, "forget_filter_column": "", "forget_filter_value": "",
            "forget_id_column": None, "forget_id_text": "", "forget_id_file": None,
            "method": "rbm", "epochs": 2.0, "batch_size": 0.0, "seed": 0.0, "mixed_precision": "no",
            "retain_fraction": 1.0, "with_retrain": False, "settings": None}
    return {**form, **changes}


def test_the_api_the_cli_and_the_app_build_one_and_the_same_configuration(demo_assets):
    from hf_unlearn.cli import build_parser, keywords_from_args
    from hf_unlearn.ui import keywords_from_form

    model, data = map(str, demo_assets)
    api = RunConfig.from_keywords(model=model, dataset=data, forget="3", method="rbm", epochs=2, seed=0)
    args = build_parser().parse_args(["run", "--model", model, "--dataset", data, "--forget-class", "3",
                                      "--method", "rbm", "--epochs", "2", "--output", "unused"])
    cli = RunConfig.from_keywords(**keywords_from_args(args))
    app = RunConfig.from_keywords(**keywords_from_form(_app_form(model, data)))
    assert api == cli == app
    assert api.forget == ForgetSpec("class", classes=("3",)) and api.settings.epochs == 2

    changed = dict(forget_kind="random", forget_fraction=0.2, forget_stratified=True, forget_seed=4.0, seed=1.0,
                   dataset_config="", test_split="test", epochs=0.0, with_retrain=True)
    args = build_parser().parse_args(["run", "--model", model, "--dataset", data, "--forget-fraction", "0.2",
                                      "--stratified", "--forget-seed", "4", "--seed", "1", "--test-split", "test",
                                      "--method", "rbm", "--reference", "retrain", "--output", "unused"])
    cli = RunConfig.from_keywords(**keywords_from_args(args))
    app = RunConfig.from_keywords(**keywords_from_form(_app_form(model, data, **changed)))
    assert cli == app and cli.retrain_settings == get_method("retrain").settings({})
    assert cli.forget == ForgetSpec(fraction=0.2, stratified=True, seed=4) and cli.options.seed == 1


def test_unlearns_signature_spells_out_every_configuration_keyword():
    params = inspect.signature(unlearn).parameters
    for keyword in (*config_keywords(), *TOP_LEVEL):
        assert keyword in params or keyword in ("model", "dataset", "forget", "method"), keyword
    assert params["train_split"].default == "train" and params["mixed_precision"].default == "no"


def test_method_settings_never_shadow_a_configuration_keyword():
    reserved = set(config_keywords()) | set(TOP_LEVEL) | {"processor", "token", "progress", "cancel"}
    for name in available_methods():
        clash = {s["name"] for s in get_method(name).describe_settings()} & reserved
        assert not clash, (name, clash)


def test_each_check_lives_in_the_configuration():
    with pytest.raises(UnlearnError, match="mixed_precision must be one of no, bf16, fp16; got 'fp8'"):
        RunConfig.from_keywords(model="m", dataset="d", forget="3", mixed_precision="fp8")
    with pytest.raises(UnlearnError, match="unknown setting 'bogus' for method 'ft'"):
        RunConfig.from_keywords(model="m", dataset="d", forget="3", bogus=1)
    with pytest.raises(UnlearnError, match="epochs must be a positive integer"):
        RunConfig.from_keywords(model="m", dataset="d", forget="3", reference="retrain",
                                retrain_settings={"epochs": 0})
    with pytest.raises(UnlearnError, match="reference must be 'retrain'"):
        RunConfig.from_keywords(model="m", dataset="d", forget="3", reference=3.5)


@pytest.mark.parametrize("name", ["report_v1_class.json", "report_v1_indices.json"])
def test_reports_of_schema_version_1_still_load(name, tmp_path):
    from huggingface_hub import ModelCard

    from hf_unlearn.card import build_model_card

    raw = json.loads((DATA / name).read_text())
    assert raw["schema_version"] == 1
    report = UnlearnReport.load(DATA / name)
    assert report.schema_version == 4 and report.metrics == raw["metrics"]
    kind = raw["forget"]["kind"]
    own = {"class": {"classes"}, "indices": {"indices"}}[kind]
    assert set(report.forget) == own | {"kind", "seed", "retain_fraction", "description", "n_forget",
                                        "forget_ids_sha256", "class_ids", "class_names"}
    assert all(report.forget[k] == raw["forget"][k] for k in report.forget)
    assert "| original |" in report.markdown()
    build_model_card(report, "alice/old").save(tmp_path / "README.md")
    card = ModelCard.load(tmp_path / "README.md")
    assert {r.dataset_split for r in card.data.eval_results} == {"forget", "retain", "test"}
    back = UnlearnReport.from_dict(json.loads(report.to_json()))  # and it is written back as schema 2
    assert back.forget == report.forget
    if kind == "class":
        assert ForgetSpec.from_dict(report.forget) == ForgetSpec(classes=("3",))
    else:  # a report keeps only how many rows were listed: it cannot say which
        with pytest.raises(UnlearnError, match="only how many rows"):
            ForgetSpec.from_dict(report.forget)


def test_run_method_leaves_the_original_untouched_and_times_the_method(demo_assets, digits):
    import torch
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    from hf_unlearn.config import DataSource
    from hf_unlearn.data import build_data
    from hf_unlearn.engine import Engine
    from hf_unlearn.methods import run_method

    model = AutoModelForImageClassification.from_pretrained(demo_assets[0])
    proc = AutoImageProcessor.from_pretrained(demo_assets[0])
    data, _ = build_data(digits, DataSource("digits"), ForgetSpec(classes=("3",)), proc, 1)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    done = run_method(Engine(cpu=True), model, data, "ft", {"epochs": 1}, seed=0)
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())
    assert any(not torch.equal(p, before[n]) for n, p in done.model.named_parameters())
    assert done.seconds > 0 and done.model is not model


def test_the_accelerate_shim_keeps_its_private_calls_to_the_version_it_was_written_for(monkeypatch):
    from accelerate import Accelerator

    from hf_unlearn import accelerate_compat as shim
    from hf_unlearn.engine import Engine

    assert shim.private_api_supported()  # accelerate 1.x is what the project installs
    engine = Engine(cpu=True)
    engine.accelerator.prepare_optimizer(torch_optimizer(), device_placement=False)
    assert len(engine.accelerator._optimizers) == 1
    shim.release_optimizers(engine.accelerator)
    assert engine.accelerator._optimizers == []
    Engine(mixed_precision="bf16", cpu=True)  # a precision switch goes through reset_state
    Engine(cpu=True)

    monkeypatch.setattr(shim, "accelerate_version", lambda: (2, 0))
    freed = []
    monkeypatch.setattr(Accelerator, "free_memory", lambda self, *objects: freed.append(self))
    shim.release_optimizers(engine.accelerator)  # another major version: the public, slower release
    assert freed == [engine.accelerator]
    with pytest.warns(RuntimeWarning, match="written for accelerate 1.x"):  # tried, and said so
        shim.reset_state()
    from accelerate.state import AcceleratorState

    monkeypatch.delattr(AcceleratorState, "_reset_state")
    with pytest.raises(UnlearnError, match="needs accelerate 1.x"):  # gone: what to install, in one line
        shim.reset_state()


def torch_optimizer():
    import torch

    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1)


def test_a_configuration_built_directly_is_checked_too(tmp_path):
    from hf_unlearn import DataSource, ModelSource

    src, data, spec = ModelSource("m"), DataSource("d"), ForgetSpec(classes=("3",))
    built = RunConfig(src, data, spec, method="rbm", settings={"epochs": 2}, reference="retrain")
    assert built.settings == get_method("rbm").settings({"epochs": 2})
    assert built.retrain_settings == get_method("retrain").settings({})  # a Retrain reference always has a recipe
    with pytest.raises(UnlearnError, match="unknown method 'nope'"):
        RunConfig(src, data, spec, method="nope")
    with pytest.raises(UnlearnError, match="RunConfig.forget must be a ForgetSpec"):
        RunConfig(src, data, "3")


def test_a_bad_reference_report_is_refused_before_anything_runs(tmp_path, demo_assets):
    missing = tmp_path / "nothing" / "report.json"
    with pytest.raises(UnlearnError, match="no report at"):
        RunConfig.from_keywords(model="m", dataset="d", forget="3", reference=str(missing))
    not_retrain = tmp_path / "ft"
    unlearn(str(demo_assets[0]), str(demo_assets[1]), "3", "ft", epochs=1).save(not_retrain)
    with pytest.raises(UnlearnError, match="is from method 'ft', not a retrain"):
        RunConfig.from_keywords(model="m", dataset="d", forget="3", reference=str(not_retrain))


def test_avg_gap_is_undefined_when_a_gap_metric_is_missing():
    import math

    from hf_unlearn.metrics import avg_gap

    full = {"ua": 1.0, "ra": 2.0, "ta": 3.0, "mia_efficacy": 4.0}
    assert avg_gap(full, full) == 0.0
    assert math.isnan(avg_gap(full, {**full, "mia_efficacy": None}))
    assert math.isnan(avg_gap({k: v for k, v in full.items() if k != "ta"}, full))


def test_a_run_without_its_own_cancel_event_keeps_the_enclosing_one():
    import threading

    from hf_unlearn import Cancelled
    from hf_unlearn.cancel import cancellable, honours_cancel, raise_if_cancelled

    @honours_cancel
    def step(cancel=None):
        raise_if_cancelled()

    event = threading.Event()
    event.set()
    with cancellable(event), pytest.raises(Cancelled):
        step()  # no cancel= of its own: the enclosing run's event still stops it


def test_a_forget_kind_must_bring_its_own_names():
    from dataclasses import dataclass

    import numpy as np

    from hf_unlearn.fields import doc
    from hf_unlearn.forget import ForgetKind, register_kind

    @dataclass(frozen=True)
    class Clashing:
        classes: tuple = doc((), "classes again")

    @dataclass(frozen=True)
    class Seeded:
        seed: int = doc(0, "ForgetSpec's own")

    for fields_cls, fragment in ((Clashing, "['classes']"), (Seeded, "['seed']")):
        kind = ForgetKind(name="clash", title="a clash", fields=fields_cls, describe=lambda f, s: "x",
                          select=lambda f, train, s: np.arange(1))
        with pytest.raises(ValueError, match=r"(input|field) names .* are taken") as exc:
            register_kind(kind)
        assert fragment in str(exc.value)


def test_a_yes_no_field_that_defaults_to_yes_can_be_switched_off(demo_assets):
    from dataclasses import dataclass

    import numpy as np

    from hf_unlearn.cli import build_parser, keywords_from_args
    from hf_unlearn.fields import doc
    from hf_unlearn.forget import ForgetKind, register_kind, unregister_kind

    @dataclass(frozen=True)
    class Halves:
        first_half: bool = doc(True, "forget the first half of the rows (else the second)")

    register_kind(ForgetKind(name="half", title="half the rows", fields=Halves, describe=lambda f, s: "half",
                             select=lambda f, train, s: np.arange(len(train))[:len(train) // 2]
                             if f.first_half else np.arange(len(train))[len(train) // 2:]))
    try:
        base = ["run", "--model", "m", "--dataset", "d", "--output", "o"]
        off = keywords_from_args(build_parser().parse_args([*base, "--no-forget-first-half"]))["forget"]
        on = keywords_from_args(build_parser().parse_args([*base, "--forget-first-half"]))["forget"]
        assert off == ForgetSpec("half", first_half=False) and on == ForgetSpec("half", first_half=True)
        from hf_unlearn.ui import keywords_from_form

        form = {"model": str(demo_assets[0]), "dataset": str(demo_assets[1]), "forget_kind": "half",
                "forget_first_half": False, "method": "ft"}
        assert keywords_from_form(form)["forget"] == ForgetSpec("half", first_half=False)  # an unticked box
    finally:
        unregister_kind("half")
