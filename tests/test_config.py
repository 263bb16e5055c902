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
    assert report.schema_version == 2 and report.metrics == raw["metrics"]
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


def test_the_accelerate_shim_uses_its_private_calls_only_on_the_version_it_was_written_for(monkeypatch):
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
    with pytest.raises(UnlearnError, match="needs accelerate 1.x"):
        shim.reset_state()


def torch_optimizer():
    import torch

    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1)
