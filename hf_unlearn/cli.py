"""``hf-unlearn``: the command line (run, demo, methods).

User mistakes print one ``error:`` line and exit with code 2; no traceback,
no partial output.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import UnlearnError


def _quiet() -> None:
    """Library chatter (progress bars, fallback warnings) hides the results on a terminal."""
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        import datasets
        import transformers

        datasets.disable_progress_bars()
        transformers.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
    except Exception:  # noqa: BLE001 - cosmetics only
        pass


def _key_values(items: Sequence[str] | None, flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        if "=" not in item:
            raise UnlearnError(f"{flag} expects KEY=VALUE, got '{item}'")
        k, v = item.split("=", 1)
        out[k.strip().replace("-", "_")] = v.strip()
    return out


def parse_indices(text: str) -> tuple[int, ...]:
    """Comma/space separated indices, or @FILE with one index per line (or a JSON list)."""
    if text.startswith("@"):
        path = Path(text[1:])
        try:
            text = path.read_text()
        except OSError as exc:
            raise UnlearnError(f"cannot read the index file '{path}': {exc.strerror}") from None
        if text.lstrip().startswith("["):
            try:
                return tuple(int(v) for v in json.loads(text))
            except (ValueError, TypeError):
                raise UnlearnError(f"'{path}' is not a JSON list of integers") from None
    values = [v for v in text.replace(",", " ").split() if v]
    try:
        return tuple(int(v) for v in values)
    except ValueError:
        bad = next(v for v in values if not v.lstrip("-").isdigit())
        raise UnlearnError(f"forget index '{bad}' is not an integer row number") from None


def forget_spec_from_args(args: argparse.Namespace) -> Any:
    from .config import ForgetSpec

    kw: dict[str, Any] = {"seed": args.forget_seed, "retain_fraction": args.retain_fraction,
                          "stratified": args.stratified}
    if args.forget_class:
        kw["classes"] = tuple(c for group in args.forget_class for c in group.split(",") if c)
    if args.forget_fraction is not None:
        kw["fraction"] = args.forget_fraction
    if args.forget_count is not None:
        kw["count"] = args.forget_count
    if args.forget_indices:
        kw["indices"] = parse_indices(args.forget_indices)
    if args.forget_filter:
        if "=" not in args.forget_filter:
            raise UnlearnError(f"--forget-filter expects COLUMN=VALUE, got '{args.forget_filter}'")
        col, val = args.forget_filter.split("=", 1)
        kw["filter_column"], kw["filter_value"] = col.strip(), val.strip()
    return ForgetSpec(**kw)


def _progress_printer() -> Any:
    last = {"key": None}

    def show(event: dict[str, Any]) -> None:
        key = (event.get("phase"), event.get("epoch"))
        if event.get("step") and event["step"] % max(1, event["steps"] // event["epochs"]) == 0 \
                and key != last["key"]:
            last["key"] = key
            print(f"  {event['phase']}: epoch {event['epoch']}/{event['epochs']}  loss {event['loss']:.4f}",
                  file=sys.stderr, flush=True)

    return show


def cmd_run(args: argparse.Namespace) -> int:
    from .api import unlearn

    settings: dict[str, Any] = _key_values(args.set, "--set")
    for name in ("epochs", "lr", "batch_size"):
        value = getattr(args, name)
        if value is not None:
            settings[name] = value
    spec = forget_spec_from_args(args)
    out = Path(args.output)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not args.overwrite:
        raise UnlearnError(f"output directory '{out}' already exists and is not empty: "
                           "choose another or pass --overwrite")
    result = unlearn(
        args.model, args.dataset, spec, args.method, revision=args.revision,
        dataset_config=args.dataset_config, dataset_revision=args.dataset_revision,
        train_split=args.train_split, test_split=args.test_split,
        image_column=args.image_column, label_column=args.label_column, streaming=args.streaming,
        reference=args.reference, retrain_settings=_key_values(args.retrain_set, "--retrain-set") or None,
        seed=args.seed, mixed_precision=args.mixed_precision, cpu=args.cpu, eval_batch_size=args.eval_batch_size,
        cache_dir=args.cache_dir, reinit_head=args.reinit_head, token=args.token or os.environ.get("HF_TOKEN"),
        progress=None if args.quiet else _progress_printer(), **settings)
    if not _is_main_process():
        return 0  # under `accelerate launch` one process writes and pushes; the others computed the same result
    path = result.save(out, overwrite=args.overwrite)
    print(result.report.summary())
    print(f"saved to {path}")
    if args.push_to:
        _push(path, args.push_to, args)
    return 0


def _is_main_process() -> bool:
    from accelerate import PartialState

    return PartialState().is_main_process


def _push(source: Any, repo: str, args: argparse.Namespace) -> None:
    from .push import push_to_hub

    info = push_to_hub(source, repo, token=args.token or os.environ.get("HF_TOKEN"), private=args.private or None,
                       create_pr=args.create_pr, branch=args.branch)
    print(f"pushed: {info.pr_url or info.commit_url}")


def cmd_push(args: argparse.Namespace) -> int:
    _push(Path(args.dir), args.repo, args)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    settings = _key_values(args.set, "--set")
    run_demo(args.cache_dir, forget_class=args.forget_class, method=args.method, **settings)
    return 0


def cmd_methods(args: argparse.Namespace) -> int:
    from .methods import available_methods, get_method

    for name in available_methods():
        m = get_method(name)
        print(f"{m.name}: {m.title}. {m.summary}")
        if args.verbose:
            for s in m.describe_settings():
                print(f"    {s['name']} ({s['type']}, default {s['default']!r}): {s['help']}")
    return 0


def _push_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--private", action="store_true", help="create the repo private")
    p.add_argument("--create-pr", action="store_true", help="open a pull request instead of committing to main")
    p.add_argument("--branch", help="commit to this branch (created if missing)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hf-unlearn", description="Make a Hub image classifier forget part of its data.")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="unlearn with one method and save the checkpoint and report")
    r.add_argument("--model", required=True, help="model directory or Hub repo id")
    r.add_argument("--revision", help="model branch, tag or commit")
    r.add_argument("--dataset", required=True, help="dataset folder, parquet file or Hub repo id")
    r.add_argument("--dataset-config", help="dataset configuration name")
    r.add_argument("--dataset-revision", help="dataset branch, tag or commit")
    r.add_argument("--train-split", default="train", help="split the model was trained on (default train)")
    r.add_argument("--test-split", help="held-out split (default: test or validation)")
    r.add_argument("--image-column", help="image column (default: detected)")
    r.add_argument("--label-column", help="label column (default: detected)")
    r.add_argument("--streaming", action="store_true",
                   help="stream the dataset (one pass to an on-disk table; for datasets larger than memory)")
    f = r.add_argument_group("what to forget (choose one kind)")
    f.add_argument("--forget-class", action="append", help="class name or id (repeat or comma-separate)")
    f.add_argument("--forget-fraction", type=float, help="random fraction of the training split")
    f.add_argument("--forget-count", type=int, help="random number of training rows")
    f.add_argument("--stratified", action="store_true", help="draw the random forget set evenly per class")
    f.add_argument("--forget-indices", help="row indices: '1,5,9' or @FILE (one per line, or a JSON list)")
    f.add_argument("--forget-filter", help="COLUMN=VALUE: forget rows where the column equals the value")
    f.add_argument("--forget-seed", type=int, default=0, help="seed of the random forget draw")
    f.add_argument("--retain-fraction", type=float, default=1.0, help="subsample of D_r the method trains on")
    r.add_argument("--method", default="ft", help="unlearning method (see `hf-unlearn methods`)")
    r.add_argument("--epochs", type=int, help="method epochs (shortcut for --set epochs=N)")
    r.add_argument("--lr", type=float, help="method learning rate")
    r.add_argument("--batch-size", type=int, help="method batch size")
    r.add_argument("--set", action="append", metavar="KEY=VALUE", help="any method setting (repeatable)")
    r.add_argument("--reference", help="'retrain' to retrain on D_r for Avg.Gap, or a Retrain report.json")
    r.add_argument("--retrain-set", action="append", metavar="KEY=VALUE", help="Retrain recipe setting")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--mixed-precision", default="no", choices=["no", "bf16", "fp16"])
    r.add_argument("--cpu", action="store_true", help="run on the CPU even if a GPU is present")
    r.add_argument("--eval-batch-size", type=int, default=256)
    r.add_argument("--cache-dir", help="where decoded tensors are cached")
    r.add_argument("--reinit-head", action="store_true", help="new classification head for the dataset's labels")
    r.add_argument("--token", help="Hub token (default: HF_TOKEN or the saved login)")
    r.add_argument("--output", required=True, help="directory for the checkpoint and report")
    r.add_argument("--overwrite", action="store_true", help="replace an existing output directory")
    r.add_argument("--quiet", action="store_true", help="no progress lines")
    r.add_argument("--push-to", metavar="REPO", help="after saving, push the checkpoint to this Hub repo")
    _push_flags(r)
    r.set_defaults(func=cmd_run)

    pu = sub.add_parser("push", help="push a saved output folder to the Hub (one atomic commit, with a model card)")
    pu.add_argument("dir", help="the --output folder of `hf-unlearn run`")
    pu.add_argument("--repo", required=True, help="target repo id, namespace/name")
    pu.add_argument("--token", help="Hub token with write access (default: HF_TOKEN or the saved login)")
    _push_flags(pu)
    pu.set_defaults(func=cmd_push)

    d = sub.add_parser("demo", help="offline example: forget one digit, compare with Retrain")
    d.add_argument("--method", default="ft")
    d.add_argument("--forget-class", default="3")
    d.add_argument("--set", action="append", metavar="KEY=VALUE")
    d.add_argument("--cache-dir", help="where the demo model and data are cached")
    d.set_defaults(func=cmd_demo)

    m = sub.add_parser("methods", help="list the unlearning methods")
    m.add_argument("-v", "--verbose", action="store_true", help="also list every setting")
    m.set_defaults(func=cmd_methods)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _quiet()
    try:
        return int(args.func(args))
    except UnlearnError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted; no output was written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
