"""MinNorm-OG: per-sample gradients, Gram-space projection, linear exactness, sampling, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from hf_unlearn import UnlearnError, unlearn
from hf_unlearn.methods.minnorm_og import layer_grads, stratified_rows
from hf_unlearn.methods.minnorm_og.gradients import gram, per_sample_output_grads, shrink_outside_span
from hf_unlearn.methods.minnorm_og.span import OutputSpan, SpanShrinker
from research.conditioning import ill_conditioned


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
    x = torch.randn(6, 3, 16, 16)
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


class _Mixed(nn.Module):
    """Every case the closed forms must get right: in-place ReLU after BatchNorm, a layer used twice,
    GroupNorm, a grouped convolution, a bare parameter only vmap can see, and an ImageNet-style head."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.relu = nn.ReLU(inplace=True)
        self.depthwise = nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False)
        self.gn = nn.GroupNorm(2, 8)
        self.scale = nn.Parameter(torch.rand(8) + 0.5)
        self.shared = nn.Linear(8, 8)
        self.head = nn.Linear(8, 5)

    def forward(self, pixel_values: torch.Tensor):
        z = self.relu(self.bn(self.conv(pixel_values)))
        z = self.gn(self.depthwise(z)) * self.scale[:, None, None]
        z = z.mean((2, 3))
        z = self.shared(torch.tanh(self.shared(z)))
        return type("Out", (), {"logits": self.head(z)})()


def _tiny(kind: str) -> nn.Module:
    from transformers import (
        ConvNextConfig,
        ConvNextForImageClassification,
        ResNetConfig,
        ResNetForImageClassification,
        ViTConfig,
        ViTForImageClassification,
    )

    if kind == "resnet":
        return ResNetForImageClassification(ResNetConfig(num_channels=3, embedding_size=8, hidden_sizes=[8, 16],
                                                         depths=[1, 1], layer_type="basic", num_labels=5))
    if kind == "vit":  # cls token and position embeddings are bare parameters: the vmap fallback
        return ViTForImageClassification(ViTConfig(image_size=16, patch_size=4, hidden_size=16, num_hidden_layers=1,
                                                   num_attention_heads=2, intermediate_size=32, num_labels=5))
    if kind == "convnext":  # depthwise convolutions, a custom LayerNorm and layer-scale parameters
        return ConvNextForImageClassification(ConvNextConfig(num_channels=3, num_stages=2, hidden_sizes=[8, 16],
                                                             depths=[1, 1], num_labels=5, image_size=16))
    return _Mixed()


@pytest.mark.parametrize("kind", ["resnet", "vit", "convnext", "mixed"])
def test_output_span_equals_the_vmap_reference(kind):
    torch.manual_seed(0)
    model = _tiny(kind).double()
    with torch.no_grad():  # non-trivial BatchNorm statistics, so eval-mode normalisation matters
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    x = torch.randn(7, 3, 16, 16, dtype=torch.float64)
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    reference = per_sample_output_grads(model, x, chunk_size=None)
    k_ref = gram(reference)
    b_ref = sum(reference[n].reshape(7, -1) @ p.detach().reshape(-1) for n, p in params.items())
    expected = {n: p.detach().clone() for n, p in params.items()}
    shrink_outside_span(expected, reference, 0.3)

    span = OutputSpan(model, x, params)
    assert torch.allclose(span.k, k_ref, rtol=1e-10, atol=1e-12 * k_ref.abs().max())
    assert torch.allclose(span.b, b_ref, rtol=1e-10, atol=1e-12 * b_ref.abs().max())
    span.shrink(0.3)
    for n, p in params.items():
        assert torch.allclose(p.detach(), expected[n], rtol=1e-9, atol=1e-12), n
    assert model.training  # modes restored


def test_ghost_gram_is_used_where_cheaper_and_agrees_with_the_formed_gradients():
    torch.manual_seed(1)
    n = 6
    narrow = nn.Conv2d(32, 32, 3, padding=1).double()  # 2×2 map, 9,216 weights: ghost
    wide = nn.Conv2d(3, 4, 3, padding=1).double()  # 32×32 map, 108 weights: formed
    for conv, size in ((narrow, 2), (wide, 32)):
        a = torch.randn(n, conv.in_channels, size, size, dtype=torch.float64)
        out = conv(a)
        d = torch.randn_like(out)
        ghost = layer_grads.ghost_gram(conv, a, d)
        g = layer_grads.layer_grads(conv, a, d)["weight"].reshape(n, -1)
        if conv is wide:
            assert ghost is None
            continue
        k, b = ghost
        assert torch.allclose(k, g @ g.T, rtol=1e-10)
        assert torch.allclose(b, g @ conv.weight.detach().reshape(-1), rtol=1e-10)


def test_output_span_on_the_linear_model_is_the_min_norm_interpolator():
    g = torch.Generator().manual_seed(3)
    d, n_r = 60, 15
    x_r = torch.randn(n_r, d, generator=g, dtype=torch.float64)
    y_r = torch.randn(n_r, generator=g, dtype=torch.float64)
    x_all = torch.cat([x_r, torch.randn(4, d, generator=g, dtype=torch.float64)])
    y_all = torch.cat([y_r, torch.full((4,), 1.5, dtype=torch.float64)])
    model = nn.Linear(d, 1, bias=False).double()
    with torch.no_grad():
        model.weight.copy_((torch.linalg.pinv(x_all) @ y_all)[None])
    OutputSpan(model, x_r, dict(model.named_parameters()), index=torch.zeros(n_r, dtype=torch.long),
               call=_linear_call).shrink(1.0)
    assert torch.max(torch.abs(model.weight[0].detach() - torch.linalg.pinv(x_r) @ y_r)) < 1e-8


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU (run on the GPU machine)")
@pytest.mark.parametrize("kind", ["resnet", "mixed"])
def test_graphed_projection_matches_the_eager_one_on_cuda(kind):
    import copy

    torch.manual_seed(0)
    model = _tiny(kind).cuda()
    twin = copy.deepcopy(model)
    params = dict(model.named_parameters())
    twin_params = dict(twin.named_parameters())
    shrinker = SpanShrinker(model, params)
    opts = [torch.optim.SGD(m.parameters(), lr=0.05) for m in (model, twin)]
    for step in range(5):
        x = torch.randn(7, 3, 16, 16, device="cuda")
        lam = 0.3 * 0.9**step
        c = shrinker(x, lam)
        c_eager = OutputSpan(twin, x, twin_params).shrink(lam)
        assert torch.allclose(c, c_eager, rtol=1e-3, atol=1e-5), step
        for m, opt in zip((model, twin), opts, strict=True):  # a retain step moves the weights in between
            m.train()
            opt.zero_grad()
            loss = m(pixel_values=x).logits.square().mean()
            loss.backward()  # ``loss`` stays alive into the next projection, as in the engine's loop
            opt.step()
    for n, p in params.items():
        assert torch.allclose(p, twin_params[n], rtol=1e-3, atol=1e-5), n
    states = list(shrinker.state.values())
    if kind == "resnet":  # closed forms everywhere: captured and replayed
        assert len(states) == 1 and not isinstance(states[0], str)
    else:  # a bare parameter needs vmap: stays eager
        assert states == ["eager"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU (run on the GPU machine)")
def test_minnorm_og_in_the_engine_replays_its_projection_from_cuda_graphs(demo_assets, caplog):
    result = unlearn(str(demo_assets[0]), str(demo_assets[1]), "3", method="minnorm-og", epochs=3, n_pert=20,
                     mixed_precision="bf16")
    assert result.artifacts["projections"] > 2
    assert result.artifacts["projection_path"] == "cuda-graphs"
    assert "capture failed" not in caplog.text
    assert result.report.metrics["unlearned"]["ra"] > 50


def test_output_span_over_a_subset_of_trainable_parameters_matches_the_reference():
    torch.manual_seed(2)
    model = _tiny("resnet").double()
    for name, p in model.named_parameters():  # frozen: the stem, and every bias of the classifier
        if name.startswith("resnet.embedder") or name.endswith("classifier.1.bias"):
            p.requires_grad_(False)
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen and params
    x = torch.randn(6, 3, 16, 16, dtype=torch.float64)
    reference = per_sample_output_grads(model, x, chunk_size=None)
    assert set(reference) == set(params)
    b_ref = sum(reference[n].reshape(6, -1) @ p.detach().reshape(-1) for n, p in params.items())
    span = OutputSpan(model, x, params)
    assert torch.allclose(span.k, gram(reference), rtol=1e-10)
    assert torch.allclose(span.b, b_ref, rtol=1e-10)
    span.shrink(0.5)
    for n, p in model.named_parameters():
        if n in frozen:
            assert torch.equal(p, frozen[n]), n


def _flat(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()]).double()


@pytest.mark.parametrize("path", ["output-span", "output-span, no ghost Gram", "vmap"])
@pytest.mark.parametrize("kind,spread", [("mlp", 7e-2), ("mlp", 3.5e-2), ("conv", 0.03), ("conv", 0.01)])
def test_an_ill_conditioned_float32_projection_keeps_the_retain_outputs_as_a_float64_qr_does(path, kind, spread,
                                                                                            monkeypatch):
    """One shrink must leave the retain samples' linearised outputs Gᵀθ where they were, to within 10× of the
    float64-QR projection of the authors' code (written out here: QR of G in float64, Q back to float32, the
    update in float32). With GᵀG, Gᵀθ and G c summed in float32 the outputs moved 150-460× more, with only
    G c in float32 6-13× more (scripts/minnorm_precision.py)."""
    import copy

    lam = 0.5
    model, x = ill_conditioned(kind, spread)
    grads = per_sample_output_grads(model, x, call=_linear_call, chunk_size=None)
    g = torch.cat([grads[n].reshape(len(x), -1) for n, _ in model.named_parameters()], dim=1).T.double()  # d × n
    assert torch.linalg.cond(g) >= 1e3

    theta = _flat(model)
    q, _ = torch.linalg.qr(g, mode="reduced")
    q32, t32 = q.float(), theta.float()
    reference = (t32 - lam * (t32 - q32 @ (q32.T @ t32))).double() - theta
    edited = copy.deepcopy(model)
    params = dict(edited.named_parameters())
    if path.startswith("output-span"):
        if "no ghost" in path:
            monkeypatch.setattr(layer_grads, "ghost_gram", lambda *a, **k: None)
        OutputSpan(edited, x, params, call=_linear_call).shrink(lam)
    else:
        shrink_outside_span(params, per_sample_output_grads(edited, x, call=_linear_call, chunk_size=None), lam)
    ours = _flat(edited) - theta

    # the linearised outputs under the float64 model's own G (every float32 G differs from it in its last bits)
    true = per_sample_output_grads(copy.deepcopy(model).double(), x.double(), call=_linear_call, chunk_size=None)
    g64 = torch.cat([true[n].reshape(len(x), -1) for n, _ in model.named_parameters()], dim=1).T
    moved, moved_ref = float((g64.T @ ours).abs().max()), float((g64.T @ reference).abs().max())
    assert moved <= 10 * moved_ref, (moved, moved_ref)
    exact = -lam * (theta - q @ (q.T @ theta))  # and the step is the exact one to float32 precision
    assert float((ours - exact).norm() / exact.norm()) < 1e-4
