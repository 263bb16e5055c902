"""MinNorm-OG: per-sample gradients, Gram-space projection, linear exactness, sampling, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from hf_unlearn import UnlearnError, unlearn
from hf_unlearn.gradients import per_sample_output_grads, shrink_outside_span
from hf_unlearn.methods.minnorm_og import stratified_rows


def _linear_call(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return m(x)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_linear_projection_with_lambda_1_is_the_min_norm_retain_interpolator(seed):
    g = torch.Generator().manual_seed(seed)
    d, n_r = 60, 15
    x_r = torch.randn(n_r, d, generator=g, dtype=torch.float64)
    y_r = torch.randn(n_r, generator=g, dtype=torch.float64)
    # θ_o: an interpolator of D_r (plus forget data) that is not minimum-norm
    x_f = torch.randn(4, d, generator=g, dtype=torch.float64)
    x_all = torch.cat([x_r, x_f])
    y_all = torch.cat([y_r, torch.full((4,), 1.5, dtype=torch.float64)])
    theta_o = torch.linalg.pinv(x_all) @ y_all
    model = nn.Linear(d, 1, bias=False).double()
    with torch.no_grad():
        model.weight.copy_(theta_o[None])
    grads = per_sample_output_grads(model, x_r, torch.zeros(n_r, dtype=torch.long), call=_linear_call)
    assert torch.allclose(grads["weight"][:, 0, :], x_r)  # ∂(θᵀx)/∂θ = x
    shrink_outside_span(dict(model.named_parameters()), grads, lam=1.0)
    expected = torch.linalg.pinv(x_r) @ y_r
    assert torch.max(torch.abs(model.weight[0].detach() - expected)) < 1e-8


def test_gram_projection_matches_a_qr_reference():
    torch.manual_seed(0)
    params = {"a": torch.randn(7, 5, dtype=torch.float64), "b": torch.randn(11, dtype=torch.float64)}
    grads = {"a": torch.randn(6, 7, 5, dtype=torch.float64), "b": torch.randn(6, 11, dtype=torch.float64)}
    dense = torch.cat([grads["a"].reshape(6, -1), grads["b"]], dim=1).T  # d × n
    theta = torch.cat([params["a"].reshape(-1), params["b"]])
    q, _ = torch.linalg.qr(dense)
    lam = 0.3
    reference = theta - lam * (theta - q @ (q.T @ theta))
    shrink_outside_span(params, grads, lam)
    ours = torch.cat([params["a"].reshape(-1), params["b"]])
    assert torch.max(torch.abs(ours - reference)) < 1e-10


def test_rank_deficient_gradients_still_project_exactly():
    torch.manual_seed(1)
    base = torch.randn(3, 20, dtype=torch.float64)
    grads = {"w": torch.cat([base, base[:2] * 2.0])}  # 5 columns, rank 3
    params = {"w": torch.randn(20, dtype=torch.float64)}
    q, _ = torch.linalg.qr(base.T)
    expected = q @ (q.T @ params["w"])
    shrink_outside_span(params, grads, 1.0)
    assert torch.max(torch.abs(params["w"] - expected)) < 1e-8


def test_per_sample_gradients_match_one_backward_per_sample(demo_model):
    model, _ = demo_model
    x = torch.randn(6, 1, 16, 16)
    grads = per_sample_output_grads(model, x, chunk_size=4)
    model.eval()
    idx = model(pixel_values=x).logits.argmax(1)
    for i in (0, 5):
        model.zero_grad()
        model(pixel_values=x[i:i + 1]).logits[0, idx[i]].backward()
        for n, p in model.named_parameters():
            assert torch.allclose(p.grad, grads[n][i], atol=1e-5), n
    model.zero_grad()


def test_more_classes_in_the_batch_than_n_pert_still_gives_a_non_empty_span():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(200), 3)
    rows = stratified_rows(labels, np.arange(200), n_pert=50, rng=rng)
    assert len(rows) >= 50 and len(set(labels[rows])) == 200  # one per class present, never 50 // 200 = 0
    assert len(stratified_rows(labels, np.array([7]), n_pert=5, rng=rng)) == 3  # all the class has
    assert len(stratified_rows(np.repeat(np.arange(4), 20), np.array([1, 2]), n_pert=7, rng=rng)) == 7
    # and the projection onto that span is a real projection, not a uniform shrink
    d = 30
    x = torch.tensor(rng.normal(size=(len(rows), d)))
    theta = torch.tensor(rng.normal(size=d))
    params = {"w": theta.clone()}
    shrink_outside_span(params, {"w": x[:, :]}, 1.0)
    assert torch.allclose(params["w"], theta, atol=1e-8)  # 200 columns span R^30: θ already inside


def test_minnorm_og_runs_end_to_end_and_projects(demo_assets):
    result = unlearn(str(demo_assets[0]), str(demo_assets[1]), "3", method="minnorm-og", epochs=3, n_pert=20)
    r = result.report
    assert result.artifacts["projections"] > 0
    assert 0 <= r.metrics["unlearned"]["ua"] <= 100 and r.metrics["unlearned"]["ra"] > 50
    orig = dict(result.original_model.named_parameters())
    assert any(not torch.equal(p, orig[n]) for n, p in result.model.named_parameters())


@pytest.mark.parametrize("settings,fragment", [
    ({"lambda_reg": 1.5}, "lambda_reg must be in [0, 1]"),
    ({"lambda_reg": -0.1}, "lambda_reg must be in [0, 1]"),
    ({"n_pert": 0}, "n_pert must be at least 1"),
])
def test_bad_minnorm_settings(demo_assets, settings, fragment):
    with pytest.raises(UnlearnError) as e:
        unlearn(str(demo_assets[0]), str(demo_assets[1]), "3", method="minnorm-og", **settings)
    assert fragment in str(e.value)


def test_model_without_trainable_parameters_is_an_error(demo_model, digits):
    from transformers import AutoModelForImageClassification

    from hf_unlearn.errors import UnlearnError as Err

    model, proc = demo_model
    frozen = AutoModelForImageClassification.from_config(model.config)
    for p in frozen.parameters():
        p.requires_grad_(False)
    with pytest.raises(Err, match="no trainable parameters"):
        unlearn(frozen, digits, "3", method="minnorm-og", processor=proc)


def test_per_sample_gradients_leave_each_module_in_its_mode():
    from transformers import ResNetConfig, ResNetForImageClassification

    from hf_unlearn.engine import set_bn_policy

    model = ResNetForImageClassification(ResNetConfig(num_channels=3, embedding_size=8, hidden_sizes=[8, 16],
                                                      depths=[1, 1], layer_type="basic", num_labels=4))
    set_bn_policy(model, "freeze")  # train mode with BatchNorm in eval mode, as during unlearning
    before = {n: m.training for n, m in model.named_modules()}
    per_sample_output_grads(model, torch.randn(3, 3, 16, 16))
    assert {n: m.training for n, m in model.named_modules()} == before
    assert model.training and not all(before.values())
