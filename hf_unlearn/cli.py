"""``hf-unlearn``: the command line (run, compare, tune, audit, push, demo, methods).

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
from .output import check_output_dir


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


def add_input_flags(parser: Any, inputs: tuple[F.Input, ...], dest: Any = None) -> None:
    """A flag for each input that has one; every flag defaults to None ("not given": the field's default)."""
    for inp in inputs:
        if inp.flag is None:
            continue
        kwargs: dict[str, Any] = {"dest": dest(inp) if dest else inp.name, "default": None, "help": inp.help}
        if inp.default is not None and inp.default is not False and inp.default not in ("", ()):
            kwargs["help"] += f" (default {inp.default})"
        if inp.is_switch:
            kwargs["action"] = argparse.BooleanOptionalAction if inp.default is True else "store_true"
        elif inp.repeat:
            kwargs["action"] = "append"
        if inp.metavar:
            kwargs["metavar"] = inp.metavar
        if inp.required:
            kwargs["required"] = True
        parser.add_argument(inp.flag, **kwargs)


def section_inputs() -> dict[str, tuple[F.Input, ...]]:
    """The inputs of the configuration's parts: the model, the dataset and the execution options."""
    from .config import SECTIONS

    return {name: F.field_inputs(cls) for name, cls in SECTIONS.items()}


#: the run configuration's top-level fields with flags of their own (the recipe has --retrain-set)
REFERENCE_FIELDS = ("method", "reference", "retrain_from", "retrain_base")


def config_inputs() -> tuple[F.Input, ...]:
    """The run configuration's own flags: the sources, the execution options, the method and the reference."""
    from .config import RunConfig

    return (*(i for inputs in section_inputs().values() for i in inputs),
            *F.field_inputs(RunConfig, only=REFERENCE_FIELDS))


def kind_inputs() -> tuple[F.Input, ...]:
    from .forget import all_kinds

    return tuple(inp for kind in all_kinds() for inp in kind.all_inputs())


#: method settings with a flag of their own (the rest go through --set KEY=VALUE)
SETTING_SHORTCUTS = ("epochs", "lr", "batch_size")


def shortcut_inputs() -> tuple[F.Input, ...]:
    """--epochs, --lr, --batch-size: the method settings every method has, as flags of their own."""
    from .engine import TrainSettings

    inputs = F.field_inputs(TrainSettings, only=SETTING_SHORTCUTS, key=lambda f: f"setting_{f.name}",
                            value_key=lambda f: f.name, flag=lambda f: "--" + f.name.replace("_", "-"))
    # each method has its own defaults (hf-unlearn methods -v), so the flag names none
    return tuple(dataclasses.replace(i, default=None, metavar="N", help=f"method setting: {i.help} "
                                     f"(shortcut for --set {i.name.removeprefix('setting_')}=N)") for i in inputs)


def add_run_flags(r: Any) -> None:
    """The run command's flags, generated from the run configuration's and the forget kinds' declarations."""
    from .config import RunConfig
    from .forget import common_inputs, form_name

    sections, top = section_inputs(), {i.name: i for i in F.field_inputs(RunConfig, only=REFERENCE_FIELDS)}
    add_input_flags(r.add_argument_group("model and dataset"), sections["model"] + sections["data"])
    forget = r.add_argument_group("what to forget (choose one kind)")
    add_input_flags(forget, kind_inputs(), dest=lambda inp: form_name(inp.name))
    add_input_flags(forget, common_inputs())
    method = r.add_argument_group("method and reference")
    add_input_flags(method, (top["method"], *shortcut_inputs()))
    method.add_argument("--set", action="append", metavar="KEY=VALUE", help="any method setting (repeatable)")
    add_input_flags(method, (top["reference"], top["retrain_from"], top["retrain_base"]))
    recipe = next(f for f in dataclasses.fields(RunConfig) if f.name == "retrain_settings")
    method.add_argument(F.flag_of(recipe), dest="retrain_set", action="append", metavar="KEY=VALUE",
                        help=F.meta(recipe, "help"))
    add_input_flags(r.add_argument_group("execution"), sections["options"])


def keywords_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The flat configuration keywords (``unlearn(...)``'s) the run command's flags describe."""
    from .forget import spec_from_form

    values = vars(args)
    settings: dict[str, Any] = _key_values(args.set, "--set")
    settings.update(F.parse_inputs(shortcut_inputs(), values))
    forget = spec_from_form(values)
    if getattr(args, "settings", None) and args.command in ("run", "audit"):
        args.method, settings, args.tuned_record = tuned_run(args.settings, args.method, forget.kind, settings)
    return {**F.parse_inputs(config_inputs(), values), "forget": forget,
            "retrain_settings": _key_values(args.retrain_set, "--retrain-set") or None, **settings}


def tuned_run(path: str, method: str | None, kind: str, own: dict[str, Any]
              ) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(method, settings under the user's ``own``, the report's record) a settings file gives ``method`` (not
    named: the file's one method); says so when that is to leave the model alone, or when the file was tuned for
    another kind."""
    from .methods import NONE
    from .tuning import load_tuning

    tuning = load_tuning(path, kind, lambda text: print(f"note: {text}", file=sys.stderr))
    if method is None:
        if len(tuning.methods) != 1:
            raise UnlearnError(f"'{path}' has tuned settings for {', '.join(tuning.methods)}: choose one with --method")
        method = next(iter(tuning.methods))
    name, settings, record = tuning.apply(method, own, Path(path).name)
    if name == NONE:
        print(f"note: {record['for']}: {record['summary']}: running 'none', which returns the untouched model",
              file=sys.stderr)
    return name, settings, record


def _progress_printer() -> Any:
    last = {"key": None}

    def show(event: dict[str, Any]) -> None:
        key = (event.get("task"), event.get("phase"), event.get("epoch"))
        if event.get("step") and event["step"] % max(1, event["steps"] // event["epochs"]) == 0 \
                and key != last["key"]:
            last["key"] = key
            task = f"[{event['task'] + 1}/{event['tasks']} {event['task_name']}] " if "task" in event else ""
            loss = f": epoch {event['epoch']}/{event['epochs']}  loss {event['loss']:.4f}" if "loss" in event else ""
            print(f"  {task}{event['phase']}{loss}", file=sys.stderr, flush=True)

    return show


def cmd_run(args: argparse.Namespace) -> int:
    from .api import run
    from .config import RunConfig

    config = RunConfig.from_keywords(**keywords_from_args(args))
    if args.settings:
        config = dataclasses.replace(config, tuned=args.tuned_record)
    out = check_output_dir(args.output, args.overwrite)
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


def cmd_compare(args: argparse.Namespace) -> int:
    from .compare import DEFAULT_SEEDS, run_comparison, split_keywords
    from .config import RunConfig

    _no_single_method(args)
    keywords = keywords_from_args(args)
    methods = _methods(args)
    keywords, settings = split_keywords(keywords)
    tuned = None
    if args.settings:  # each covered method at its best trial's settings, under the user's --set
        from .tuning import load_tuning

        tuning = load_tuning(args.settings, keywords["forget"].kind, lambda t: print(f"note: {t}", file=sys.stderr))
        tuned = {m: t.settings for m, t in tuning.methods.items()}
    keywords.setdefault("seeds", DEFAULT_SEEDS)
    keywords.update(method=methods[0], reference="retrain")
    config = RunConfig.from_keywords(**keywords)
    out = check_output_dir(args.output, args.overwrite)
    comparison = run_comparison(config, methods, settings, token=args.token or os.environ.get("HF_TOKEN"),
                                progress=None if args.quiet else _progress_printer(), under=tuned)
    if not _is_main_process():
        return 0
    comparison.save(out, overwrite=args.overwrite)
    print(comparison.markdown())
    print(f"saved comparison.json, comparison.md and pareto.png to {out}")
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    from .compare import split_keywords
    from .config import RunConfig
    from .tuning import remember, run_tuning

    _no_single_method(args)
    methods = _methods(args)
    keywords, settings = split_keywords(keywords_from_args(args))
    keywords.update(method=methods[0] if methods[0] != "none" else "ft", reference="retrain")
    config = RunConfig.from_keywords(**keywords)
    out = Path(args.output)
    if out.exists() and not args.overwrite:
        raise UnlearnError(f"'{out}' already exists: choose another settings file or pass --overwrite")
    if not out.parent.is_dir():
        raise UnlearnError(f"the folder of '{out}' does not exist: create it first")
    tuning = run_tuning(config, methods, proxies=args.proxies, trials=args.trials, timeout=args.timeout,
                        settings=settings, token=args.token or os.environ.get("HF_TOKEN"),
                        progress=None if args.quiet else _trial_printer())
    if not _is_main_process():
        return 0
    tuning.save(out)
    remember(config, tuning)
    print(tuning.markdown())
    print(f"saved the tuned settings to {out} (use: hf-unlearn run --settings {out} --method METHOD ...)")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from .audit import run_audit
    from .config import RunConfig

    if args.reference:
        raise UnlearnError("audit always measures against N Retrain references: drop --reference")
    if args.seeds:
        raise UnlearnError("an audit's seeds are 0..N−1: drop --seeds and set --n-models")
    keywords = keywords_from_args(args)  # with --settings: the tuned method and settings, under the user's own
    keywords.update(reference="retrain", method=args.method or "ft")
    config = RunConfig.from_keywords(**keywords)
    if args.settings:
        config = dataclasses.replace(config, tuned=args.tuned_record)
    out = check_output_dir(args.output, args.overwrite)
    result = run_audit(config, args.n_models, token=args.token or os.environ.get("HF_TOKEN"),
                       progress=None if args.quiet else _progress_printer())
    if not _is_main_process():
        return 0
    path = result.save(out, overwrite=args.overwrite)
    print(result.markdown())
    print(f"saved the audited checkpoint (seed 0's run) with audit.json, audit_confidences.npz and "
          f"epsilon_hist.png to {path}")
    if args.push_to:
        _push(path, args.push_to, args)
    return 0


def _trial_printer() -> Any:
    def show(event: dict[str, Any]) -> None:
        if "trial" in event:
            print(f"  {event['phase']}: trial {event['trial'] + 1}/{event['trials']}, proxy × seed "
                  f"{event['proxy'] + 1}/{event['proxies']}: Avg.Gap {event['avg_gap']:.2f}", file=sys.stderr,
                  flush=True)

    return show


def _is_main_process() -> bool:
    from accelerate import PartialState

    return PartialState().is_main_process


def _push(source: Any, repo: str, args: argparse.Namespace) -> None:
    from .push import push_to_hub

    info = push_to_hub(source, repo, token=args.token or os.environ.get("HF_TOKEN"), private=args.private or None,
                       create_pr=args.create_pr, branch=args.branch, push_ledger=args.push_ledger)
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
    p.add_argument("--push-ledger", action="store_true", help="also push unlearning_ledger.json, the rows of every "
                   "request served (they may identify people; by default the ledger stays local)")


def _output_flags(p: argparse.ArgumentParser, output: str, replaced: str) -> None:
    """--token, --output, --overwrite and --quiet of the commands that compute and write a result."""
    out = p.add_argument_group("output")
    out.add_argument("--token", help="Hub token (default: HF_TOKEN or the saved login)")
    out.add_argument("--output", required=True, help=output)
    out.add_argument("--overwrite", action="store_true", help=f"replace {replaced}")
    out.add_argument("--quiet", action="store_true", help="no progress lines")


def _several_methods(sub: Any, name: str, help_text: str, methods_help: str) -> argparse.ArgumentParser:
    """A command over several methods (compare, tune): the run's flags and --methods."""
    p = sub.add_parser(name, help=help_text)
    add_run_flags(p)
    p.add_argument("--methods", default="rbm,minnorm-og,salun,ft", help=methods_help)
    return p


def _no_single_method(args: argparse.Namespace) -> None:
    if args.method or args.reference:
        raise UnlearnError(f"{args.command} takes --methods (several, separated by commas) and always measures "
                           "against Retrain: drop --method / --reference")


def _methods(args: argparse.Namespace) -> list[str]:
    """The names a --methods value lists (one line of error when it lists none)."""
    methods = [m.strip() for m in (args.methods or "").split(",") if m.strip()]
    if not methods:
        raise UnlearnError("--methods expects method names separated by commas, e.g. rbm,minnorm-og,salun,ft")
    return methods


def build_parser() -> argparse.ArgumentParser:
    from .audit import DEFAULT_MODELS
    p = argparse.ArgumentParser(prog="hf-unlearn", description="Make a Hub image classifier forget part of its data.")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="unlearn with one method and save the checkpoint and report")
    add_run_flags(r)
    r.add_argument("--settings", metavar="FILE", help="a tuned-settings file (hf-unlearn tune): the method's tuned "
                   "settings, under any --set; 'none' when tuning found nothing better than the untouched model")
    out = r.add_argument_group("output and the Hub")
    out.add_argument("--token", help="Hub token (default: HF_TOKEN or the saved login)")
    out.add_argument("--output", required=True, help="directory for the checkpoint and report")
    out.add_argument("--overwrite", action="store_true", help="replace an existing output directory")
    out.add_argument("--quiet", action="store_true", help="no progress lines")
    out.add_argument("--push-to", metavar="REPO", help="after saving, push the checkpoint to this Hub repo")
    _push_flags(out)
    r.set_defaults(func=cmd_run)

    c = _several_methods(sub, "compare", "run several methods × seeds on one request against shared Retrain "
                         "references; write comparison.json, comparison.md and pareto.png",
                         "methods to compare, separated by commas (default rbm,minnorm-og,salun,ft); --set "
                         "KEY=VALUE sets every method that has KEY, --set METHOD.KEY=VALUE one method")
    c.add_argument("--settings", metavar="FILE", help="a tuned-settings file (hf-unlearn tune): each tuned "
                   "method runs with its best settings, under any --set")
    _output_flags(c, "directory for comparison.json, comparison.md, pareto.png", "an existing output directory")
    c.set_defaults(func=cmd_compare)

    t = _several_methods(sub, "tune", "tune methods for a request on proxy requests of its kind and size (their "
                         "own Retrain references, cached), and write a settings file for run/compare --settings",
                         "methods to tune, separated by commas (default rbm,minnorm-og,salun,ft); --set KEY=VALUE "
                         "fixes a setting instead of tuning it (METHOD.KEY=VALUE for one method)")
    t.add_argument("--proxies", type=int, default=2, help="proxy requests to tune on (default 2)")
    t.add_argument("--trials", type=int, default=30, help="trials per method (default 30; the first is the defaults)")
    t.add_argument("--timeout", type=float, default=None, help="seconds per method at most (default: no limit)")
    _output_flags(t, "the settings file to write (JSON)", "an existing settings file")
    t.set_defaults(func=cmd_tune)

    a = sub.add_parser("audit", help="the NeurIPS 2023 competition's forgetting-quality audit: the method N times "
                       "and Retrain N times (cached), each forget example's ε, the score F next to its ceiling at N")
    add_run_flags(a)
    a.add_argument("--n-models", type=int, default=DEFAULT_MODELS, metavar="N",
                   help=f"unlearned runs and retrained references, seeds 0..N-1 each (default {DEFAULT_MODELS})")
    a.add_argument("--settings", metavar="FILE", help="a tuned-settings file (hf-unlearn tune): the method's tuned "
                   "settings, under any --set")
    _output_flags(a, "directory for the audited checkpoint (seed 0's run) and audit.json, audit.md, "
                  "audit_confidences.npz, epsilon_hist.png", "an existing output directory")
    a.add_argument("--push-to", metavar="REPO", help="after saving, push the audited checkpoint to this Hub repo")
    _push_flags(a)
    a.set_defaults(func=cmd_audit)

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
