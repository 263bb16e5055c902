"""``hf-unlearn``: the command line (run, demo, methods).

User mistakes print one ``error:`` line and exit with code 2; no traceback,
no partial output.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import fields as F
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


def add_field_flags(parser: Any, cls: type, only: tuple[str, ...] | None = None) -> None:
    """One flag per documented field of ``cls`` (or of ``only`` its fields): the keyword as the destination,
    the type, default and choices from the declaration."""
    hints = F.field_types(cls)
    for f in dataclasses.fields(cls):
        if (only is not None and f.name not in only) or not F.meta(f, "help"):
            continue
        typ, default = F.base_type(hints[f.name]), F.default_of(f)
        kwargs: dict[str, Any] = {"dest": F.keyword_of(f), "help": F.meta(f, "help")}
        if default is dataclasses.MISSING:
            kwargs["required"] = True
        elif typ is bool:
            kwargs.update(action="store_true" if not default else argparse.BooleanOptionalAction, default=default)
        else:
            kwargs["default"] = default
            if default is not None:
                kwargs["help"] += f" (default {default})"
        if typ in (int, float) and "action" not in kwargs:
            kwargs["type"] = typ
        if F.meta(f, "choices"):
            kwargs["choices"] = list(F.meta(f, "choices"))
        parser.add_argument(F.flag_of(f), **kwargs)


def add_forget_flags(parser: Any) -> None:
    """Every registered kind's CLI inputs (a request gives one kind's), then the fields every request has."""
    from .forget import ForgetSpec, all_kinds, common_fields, form_name

    for kind in all_kinds():
        for inp in kind.all_inputs():
            if inp.flag is None:
                continue
            kwargs: dict[str, Any] = {"dest": form_name(inp.name), "help": inp.help, "default": None}
            if inp.is_switch:
                kwargs["action"] = "store_true"
            elif inp.repeat:
                kwargs["action"] = "append"
            if inp.metavar:
                kwargs["metavar"] = inp.metavar
            parser.add_argument(inp.flag, **kwargs)
    add_field_flags(parser, ForgetSpec, tuple(f.name for f in common_fields()))


#: method settings with a flag of their own (the rest go through --set KEY=VALUE)
SETTING_SHORTCUTS = ("epochs", "lr", "batch_size")


def add_method_flags(parser: Any) -> None:
    """--method, the settings (shortcuts and --set), the reference and the Retrain recipe (--retrain-set)."""
    from .config import RunConfig
    from .engine import TrainSettings

    add_field_flags(parser, RunConfig, ("method",))
    hints = F.field_types(TrainSettings)
    for f in dataclasses.fields(TrainSettings):
        if f.name in SETTING_SHORTCUTS:
            parser.add_argument("--" + f.name.replace("_", "-"), dest=f"setting_{f.name}", type=hints[f.name],
                                help=f"method {F.meta(f, 'help')} (shortcut for --set {f.name}=N)")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="any method setting (repeatable)")
    add_field_flags(parser, RunConfig, ("reference",))
    recipe = next(f for f in dataclasses.fields(RunConfig) if f.name == "retrain_settings")
    parser.add_argument(F.flag_of(recipe), dest="retrain_set", action="append", metavar="KEY=VALUE",
                        help=F.meta(recipe, "help"))


def keywords_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The flat configuration keywords (``unlearn(...)``'s) the run command's flags describe."""
    from .config import config_keywords
    from .forget import spec_from_form

    values = vars(args)
    keywords = {kw: values[kw] for kw in config_keywords()}
    settings: dict[str, Any] = _key_values(args.set, "--set")
    settings.update({name: values[f"setting_{name}"] for name in SETTING_SHORTCUTS
                     if values.get(f"setting_{name}") is not None})
    return {**keywords, "forget": spec_from_form(values), "method": args.method, "reference": args.reference,
            "retrain_settings": _key_values(args.retrain_set, "--retrain-set") or None, **settings}


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
    from .api import run
    from .config import RunConfig

    config = RunConfig.from_keywords(**keywords_from_args(args))
    out = Path(args.output)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not args.overwrite:
        raise UnlearnError(f"output directory '{out}' already exists and is not empty: "
                           "choose another or pass --overwrite")
    result = run(config, token=args.token or os.environ.get("HF_TOKEN"),
                 progress=None if args.quiet else _progress_printer())
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
    from .config import SECTIONS

    sources = r.add_argument_group("model and dataset")
    add_field_flags(sources, SECTIONS["model"])
    add_field_flags(sources, SECTIONS["data"])
    add_forget_flags(r.add_argument_group("what to forget (choose one kind)"))
    add_method_flags(r.add_argument_group("method and reference"))
    add_field_flags(r.add_argument_group("execution"), SECTIONS["options"])
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
