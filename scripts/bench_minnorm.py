"""Seconds per MinNorm-OG step vs a plain retain step, on a ResNet-18-sized transformers classifier.

A MinNorm-OG step = one projection (GᵀG and Gᵀθ of n_pert per-sample output
gradients, then θ ← θ − λ(θ − P_G θ)) + one retain-loss step. ``--path graphs``
(the method's path) is ``SpanShrinker``: the projection replayed from CUDA
graphs on a GPU; ``--path hooks`` is the same computation eager, with the Gram
part and the projection timed separately (GᵀG from closed-form per-layer
gradients, G c from the same per-layer forms); ``--path vmap`` is the first
implementation: G from ``torch.func.vmap(grad)``, projection tensor by tensor.

    python scripts/bench_minnorm.py [--n-pert 50] [--batch 128] [--size 32] [--path graphs|hooks|vmap] [--device cuda]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
import torch.nn.functional as F


def timed(fn, repeats: int, device: torch.device, setup=None) -> float:
    """Median wall seconds of ``fn`` over ``repeats`` runs after one warm-up (``setup`` runs untimed before each)."""
    if setup is not None:
        setup()
    fn()
    times = []
    for _ in range(repeats):
        if setup is not None:
            setup()
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    from transformers import ResNetConfig, ResNetForImageClassification

    from hf_unlearn.methods.minnorm_og.gradients import per_sample_output_grads, shrink_outside_span
    from hf_unlearn.methods.minnorm_og.span import OutputSpan, SpanShrinker

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-pert", type=int, default=50)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--chunk", type=int, default=0, help="samples per vmapped backward pass (0: all at once)")
    ap.add_argument("--path", choices=("graphs", "hooks", "vmap"), default="graphs")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--amp", action="store_true", help="bf16 autocast for the retain step (G stays float32)")
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--profile", action="store_true", help="also print torch.profiler's table of one projection")
    ap.add_argument("--precision", nargs="+", default=["float64"], choices=("float64", "float32"),
                    help="what GᵀG, Gᵀθ and G c are summed in (MinNorm-OG's span_precision); several: each in turn, "
                         "in this one run")
    args = ap.parse_args()
    device = torch.device(args.device)
    amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.amp)
    torch.manual_seed(0)
    cfg = ResNetConfig(num_channels=3, embedding_size=64, hidden_sizes=[64, 128, 256, 512], depths=[2, 2, 2, 2],
                       layer_type="basic", num_labels=10)
    model = ResNetForImageClassification(cfg).to(device)
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    model.to(memory_format=fmt)
    n_params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
    x = torch.randn(args.batch, 3, args.size, args.size, device=device).contiguous(memory_format=fmt)
    y = torch.randint(0, 10, (args.batch,), device=device)
    xp = torch.randn(args.n_pert, 3, args.size, args.size, device=device)
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}

    def retain_step() -> None:
        model.train()
        opt.zero_grad(set_to_none=True)
        with amp:
            loss = F.cross_entropy(model(pixel_values=x).logits.float(), y)
        loss.backward()
        opt.step()

    def measure(precision: str) -> None:
        dtype = getattr(torch, precision)
        holder = {}
        shrinker = SpanShrinker(model, params, dtype=dtype)

        def gradient_matrix() -> None:
            if args.path == "graphs":
                return  # one captured projection: timed as a whole below
            if args.path == "hooks":
                holder["g"] = OutputSpan(model, xp, params, dtype=dtype)
            else:
                holder["g"] = per_sample_output_grads(model, xp, chunk_size=args.chunk or None)  # float32

        def projection() -> None:
            if args.path == "graphs":
                shrinker(xp, 1e-6)
            elif args.path == "hooks":
                holder["g"].shrink(1e-6)  # spends the span: ``setup`` builds a fresh one, untimed
            else:
                shrink_outside_span(params, holder["g"], 1e-6, dtype=dtype)

        def minnorm_step() -> None:
            gradient_matrix()
            projection()
            retain_step()

        if args.path == "graphs":
            projection()  # the eager warm-up, then the capture: both before any timing
            projection()
        t_retain = timed(retain_step, args.repeats, device)
        t_grads = timed(gradient_matrix, args.repeats, device)
        t_proj = timed(projection, args.repeats, device, setup=gradient_matrix if args.path == "hooks" else None)
        graphed = args.path == "graphs" and shrinker.path() == "cuda-graphs"
        t_step = timed(minnorm_step, args.repeats, device)
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{platform.machine()} CPU " \
            f"({torch.get_num_threads()} threads)"
        print(f"ResNet-18 ({n_params / 1e6:.1f}M parameters), {args.size}px, batch {args.batch}, n_pert {args.n_pert}, "
              f"{name}, torch {torch.__version__}, path {args.path}{' (captured)' if graphed else ''}, "
              f"chunk {args.chunk}, bf16 autocast {args.amp}, "
              f"channels-last {args.channels_last}, span precision {precision}")
        print("| what | seconds |")
        print("|---|---|")
        print(f"| plain retain step (fwd+bwd+AdamW, batch {args.batch}) | {t_retain:.4f} |")
        if args.path == "graphs":
            print(f"| projection (GᵀG, Gᵀθ by closed forms, Cholesky solve, G c, update: two CUDA graphs on a GPU) "
                  f"| {t_proj:.4f} |")
        else:
            what = "GᵀG, Gᵀθ by per-layer closed forms" if args.path == "hooks" else "G by vmap"
            print(f"| gradient part ({args.n_pert} per-sample output gradients: {what}) | {t_grads:.4f} |")
            print(f"| projection (Cholesky solve{', G c by per-layer closed forms' if args.path == 'hooks' else ''}"
                  f", update) | {t_proj:.4f} |")
        print(f"| MinNorm-OG step (projection + retain step) | {t_step:.4f} |")
        print(f"step ratio MinNorm-OG / retain = {t_step / t_retain:.2f}")
        if args.profile:
            from torch.profiler import ProfilerActivity, profile

            acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
            with profile(activities=acts) as prof:
                gradient_matrix()
                projection()
                if device.type == "cuda":
                    torch.cuda.synchronize()
            key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
            print(prof.key_averages().table(sort_by=key, row_limit=25))

    for precision in args.precision:
        measure(precision)


if __name__ == "__main__":
    main()
