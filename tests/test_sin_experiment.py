"""The batched data-poisoning experiment behaves like independent per-seed runs."""

from __future__ import annotations

import copy

import pytest
import torch

from research.sin_experiment import StackedMLP, _Single, fit, make_data, mse, sup_error, unlearn_sin


def test_seed_view_edits_write_through_to_the_stacked_model():
    g = torch.Generator().manual_seed(0)
    model = StackedMLP(3, g)
    single = _Single(model, 1)
    with torch.no_grad():
        single.w2.mul_(0.0)
    assert torch.count_nonzero(model.w2[1]) == 0 and torch.count_nonzero(model.w2[0]) > 0
    x = torch.randn(3, 4, 1)
    assert torch.allclose(_Single(model, 2)(x[2]), model(x)[2], atol=1e-6)


def test_stacked_training_equals_training_each_seed_alone():
    g = torch.Generator().manual_seed(0)
    data = make_data(2, g)
    model = StackedMLP(2, g)
    alone = copy.deepcopy(model)
    fit(model, data, 20)
    # train seed 0 alone: a stacked model of one seed with the same weights and data
    one = StackedMLP(1, torch.Generator().manual_seed(5))
    one.load_state_dict({k: v[:1].clone() for k, v in alone.state_dict().items()})
    data0 = type(data)(data.x_r[:1], data.y_r[:1], data.x_f[:1], data.y_f[:1], data.grid)
    fit(one, data0, 20)
    assert torch.allclose(one.w2[0], model.w2[0], atol=1e-5)


def test_minnorm_projection_moves_retain_outputs_less_than_a_uniform_shrink():
    g = torch.Generator().manual_seed(1)
    data = make_data(2, g)
    model = StackedMLP(2, g)
    fit(model, data, 300)
    shrunk = copy.deepcopy(model)
    norm = lambda m: sum((p.detach() ** 2).sum() for p in m.parameters())  # noqa: E731
    with torch.no_grad():
        out_before = model(data.x_r)
    unlearn_sin(model, data, "minnorm-og", epochs=2, lr=1e-12, lambda_reg=0.05, t_gd=1)  # one projection
    ratio = float((norm(model) / norm(shrunk)).sqrt())
    assert ratio < 0.99  # the projection did shrink θ
    with torch.no_grad():
        for p in shrunk.parameters():
            p.mul_(ratio)  # same norm reduction, in every direction
        drift_proj = (model(data.x_r) - out_before).abs().max()
        drift_uniform = (shrunk(data.x_r) - out_before).abs().max()
    assert drift_proj < 0.5 * drift_uniform  # orthogonal to the retain outputs' gradients
    assert torch.isfinite(sup_error(model, data)).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the CUDA-graph path of fit() needs a CUDA device")
def test_graphed_fit_matches_the_eager_loop_on_cuda():
    gen = torch.Generator().manual_seed(0)
    data = make_data(2, gen).to("cuda")
    a = StackedMLP(2, torch.Generator().manual_seed(1)).cuda()
    b = copy.deepcopy(a)
    fit(a, data, 60)  # graphed
    opt = torch.optim.AdamW(b.parameters(), lr=1e-3)
    x, y = torch.cat([data.x_r, data.x_f], 1), torch.cat([data.y_r, data.y_f], 1)
    for _ in range(60):
        opt.zero_grad(set_to_none=True)
        mse(b, x, y).backward()
        opt.step()
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.allclose(pa, pb, rtol=1e-4, atol=1e-5)
