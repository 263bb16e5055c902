"""The shared training primitive: exact masks, BatchNorm policy, cancellation."""

from __future__ import annotations

import copy
import math
import threading

import pytest
import torch

from hf_unlearn.cancel import cancellable
from hf_unlearn.data import PixelNormalizer, Split
from hf_unlearn.engine import Engine, TrainSettings, augment_batch
from hf_unlearn.errors import Cancelled


def _tiny():
    from transformers import ResNetConfig, ResNetForImageClassification

    torch.manual_seed(0)
    cfg = ResNetConfig(num_channels=3, embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic",
                       num_labels=4)
    return ResNetForImageClassification(cfg)


def _split(n=64):
    g = torch.Generator().manual_seed(0)
    return Split(torch.randint(0, 256, (n, 3, 16, 16), dtype=torch.uint8, generator=g),
                 torch.randint(0, 4, (n,), generator=g))


def _random_mask(model, rho=0.5):
    g = torch.Generator().manual_seed(1)
    return {n: torch.rand(p.shape, generator=g) < rho for n, p in model.named_parameters()}


def _ce(m, b, _):
    x, y = b["train"]
    return torch.nn.functional.cross_entropy(m(pixel_values=x).logits, y)


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_masked_out_parameters_are_bit_identical_after_20_steps(optimizer):
    model = _tiny()
    before = copy.deepcopy(model.state_dict())
    mask = _random_mask(model)
    # 64 rows / batch 8 = 8 steps an epoch; 3 epochs = 24 >= 20 steps with momentum and weight decay.
    settings = TrainSettings(epochs=3, lr=0.05, batch_size=8, optimizer=optimizer, momentum=0.9,
                             weight_decay=0.1, bn_policy="train")
    Engine(cpu=True).train(model, _ce, settings, PixelNormalizer(1 / 255, [0.5] * 3, [0.5] * 3),
                           primary=("train", _split()), mask=mask)
    changed_inside = 0
    for name, p in model.named_parameters():
        m = mask[name]
        assert torch.equal(p.detach()[~m], before[name][~m]), f"{name} leaked outside the mask"
        changed_inside += int((p.detach()[m] != before[name][m]).sum())
    assert changed_inside > 100  # the masked-in weights did train


def test_bn_freeze_keeps_running_statistics():
    model = _tiny()
    stats = {k: v.clone() for k, v in model.state_dict().items() if "running" in k}
    settings = TrainSettings(epochs=1, lr=0.01, batch_size=16, bn_policy="freeze")
    Engine(cpu=True).train(model, _ce, settings, PixelNormalizer.identity(), primary=("train", _split()))
    for k, v in stats.items():
        assert torch.equal(model.state_dict()[k], v)
    settings.bn_policy = "train"
    Engine(cpu=True).train(model, _ce, settings, PixelNormalizer.identity(), primary=("train", _split()))
    assert any(not torch.equal(model.state_dict()[k], v) for k, v in stats.items())


def test_cancel_stops_training_with_cancelled():
    model = _tiny()
    cancel = threading.Event()
    seen = []

    def progress(ev):
        seen.append(ev["step"])
        if ev["step"] == 2:
            cancel.set()

    eng = Engine(cpu=True, progress=progress)
    with cancellable(cancel), pytest.raises(Cancelled):
        eng.train(model, _ce, TrainSettings(epochs=5, batch_size=8), PixelNormalizer.identity(),
                  primary=("train", _split()))
    assert seen == [1, 2]


def test_predict_is_deterministic_and_in_eval_mode():
    model = _tiny()
    eng = Engine(cpu=True, eval_batch_size=7)
    split = _split(20)
    a = eng.predict(model, split, PixelNormalizer.identity())
    b = eng.predict(model, split, PixelNormalizer.identity())
    assert a.shape == (20, 4) and torch.equal(a, b) and not model.training


def test_augmentation_keeps_shape_and_changes_pixels():
    x = torch.randn(6, 3, 16, 16)
    y = augment_batch(x, "flip_crop", torch.Generator().manual_seed(0))
    assert y.shape == x.shape and not torch.equal(x, y)
    assert torch.equal(augment_batch(x, "none", torch.Generator()), x)


def test_bf16_mixed_precision_trains():
    model = _tiny()
    eng = Engine(mixed_precision="bf16", cpu=True)
    losses = eng.train(model, _ce, TrainSettings(epochs=2, batch_size=16, bn_policy="train"),
                       PixelNormalizer.identity(), primary=("train", _split()))
    assert all(torch.isfinite(torch.tensor(losses)))
    Engine(cpu=True)  # switching precision back resets accelerate's state instead of failing


def test_fused_relabel_loss_equals_the_two_forward_loss_with_batchnorm_frozen(demo_model):
    from hf_unlearn.engine import set_bn_policy
    from hf_unlearn.methods.rl import fused_relabel_loss, relabel_loss

    model, _ = demo_model
    set_bn_policy(model, "freeze")
    gen = torch.Generator().manual_seed(0)
    batch = {"forget": (torch.randn(5, 3, 16, 16, generator=gen), torch.randint(0, 10, (5,), generator=gen)),
             "retain": (torch.randn(7, 3, 16, 16, generator=gen), torch.randint(0, 10, (7,), generator=gen))}
    grads = []
    for fn in (relabel_loss, fused_relabel_loss):
        model.zero_grad()
        loss = fn(model, batch, 0.0)
        loss.backward()
        grads.append((loss.detach(), [p.grad.clone() for p in model.parameters()]))
    (a, ga), (b, gb) = grads
    assert torch.allclose(a, b, atol=1e-6)
    assert all(torch.allclose(x, y, atol=1e-6) for x, y in zip(ga, gb, strict=True))
    model.zero_grad()


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_warmup_ramps_the_rate_linearly_then_follows_the_schedule(schedule):
    model = _tiny()
    opt = torch.optim.SGD(model.parameters(), lr=0.2)
    seen: list[float] = []
    # 64 rows / batch 8 = 8 steps an epoch; 2 epochs = 16 steps, a quarter of them (4) warming up
    settings = TrainSettings(epochs=2, lr=0.2, batch_size=8, lr_schedule=schedule, warmup=0.25, bn_policy="train")
    Engine(cpu=True).train(model, _ce, settings, PixelNormalizer(1 / 255, [0.5] * 3, [0.5] * 3),
                           primary=("train", _split()), optimizer=opt,
                           before_step=lambda *_: seen.append(opt.param_groups[0]["lr"]))
    assert len(seen) == 16
    assert seen[:4] == pytest.approx([0.05, 0.1, 0.15, 0.2])
    if schedule == "constant":
        assert seen[4:] == pytest.approx([0.2] * 12)
    else:  # cosine over the 12 steps after the ramp, from the full rate down
        assert seen[4] == pytest.approx(0.2)
        assert all(a > b for a, b in zip(seen[4:], seen[5:], strict=False))
        assert seen[-1] == pytest.approx(0.1 * (1 + math.cos(math.pi * 11 / 12)))


def test_cosine_without_warmup_is_unchanged():
    from hf_unlearn.engine import lr_factor

    f = lr_factor("cosine", 0.0, 10)
    assert [f(s) for s in range(10)] == pytest.approx([0.5 * (1 + math.cos(math.pi * s / 10)) for s in range(10)])
    assert lr_factor("constant", 0.0, 10) is None


@pytest.mark.parametrize("warmup", [-0.1, 1.0])
def test_warmup_outside_0_1_is_rejected_with_the_range(warmup):
    from hf_unlearn.errors import UnlearnError

    with pytest.raises(UnlearnError, match=r"warmup .*\[0, 1\)"):
        TrainSettings(warmup=warmup).check()
