"""Command line: `reportgen run|render|params|list|models`. Any user mistake → one line, exit ≠ 0."""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import sys
from pathlib import Path
from typing import Any

from reportgen.errors import ReportgenError, did_you_mean
from reportgen.report.documents import FORMATS, require_pdf_support
from reportgen.report.worker import warm_report_process
from reportgen.settings import SETTINGS, Setting
from reportgen.stopping import ctrl_c_after_imports, ctrl_c_stops

EXIT_USER_ERROR = 2
EXIT_CHECK_FAILED = 1


# One `reportgen run` flag per training setting, generated from its TrainConfig field (settings.py):
# a new setting gets its flag, its help and its override message without an edit here. The augmentation
# is a table of its own in the spec, so it has no single flag.
TRAIN_FLAGS = {name: setting for name, setting in SETTINGS.items() if name != "augment"}


def _spec_key(name: str) -> str:
    """The spec key a training flag overrides: one --seed replaces the spec's list of seeds."""
    return "train.seeds" if name == "seed" else f"train.{name}"


# CLI flag of every spec override, for messages
OVERRIDE_FLAGS = {
    "data.dataset": "--dataset",
    "data.data_dir": "--data-dir",
    "data.train_subset": "--train-subset",
    "data.validation": "--validation",
    "data.test_subset": "--test-subset",
    **{_spec_key(name): "--" + name.replace("_", "-") for name in TRAIN_FLAGS},
    "device": "--device",
    "report.lang": "--lang",
    "models": "--models",
    "max_trials": "--max-trials",
}


def split_models(text: str) -> list[str]:
    """`--models` items: split on commas outside brackets and JSON strings, so `mlp?hidden=[75,32],lenet5`
    is two models (a path with an apostrophe stays one item: only double quotes quote)."""
    items, current, depth, quote = [], [], 0, None
    for char in text:
        if quote:
            quote = None if char == quote else quote
        elif char == '"':
            quote = char
        elif char in "[{(":
            depth += 1
        elif char in "]})":
            depth -= 1
            if depth < 0:
                raise ReportgenError(f"--models {text!r}: unbalanced {char!r}")
        elif char == "," and depth == 0:
            items.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    if quote or depth:
        raise ReportgenError(f"--models {text!r}: unclosed {'quote' if quote else 'bracket'}")
    items.append("".join(current).strip())
    if not all(items):
        raise ReportgenError(f"--models {text!r}: expected comma-separated model names, got an empty one")
    return items


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    overrides = {
        "data.dataset": args.dataset,
        "data.data_dir": args.data_dir,
        "data.train_subset": args.train_subset,
        "data.validation": args.validation,
        "data.test_subset": args.test_subset,
        **{_spec_key(name): getattr(args, name) for name in TRAIN_FLAGS},
        "device": args.device,
        "report.lang": args.lang,
        "max_trials": args.max_trials,
        "models": [{"name": n} for n in split_models(args.models)] if args.models is not None else None,
    }
    if args.seed is not None:
        overrides["train.seeds"] = [args.seed]
    return {key: value for key, value in overrides.items() if value is not None}


def _run(args: argparse.Namespace) -> int:
    """`reportgen run`: the same request and the same `execute` as reportgen.compare() (request.py)."""
    from reportgen.request import RunRequest, execute, prepare, resume_request
    from reportgen.spec import load_spec

    # Everything is checked before anything is created under --runs-dir or --output-dir, and before torch.
    overrides = _overrides(args)
    options = {
        "runs_dir": Path(args.runs_dir),
        "output_dir": Path(args.output_dir),
        "executor": args.executor,
        "workers": args.workers,
        "address": args.address,
        "render": _render_options(args),
    }
    if args.resume:
        if args.run_id is not None:
            raise ReportgenError("give either --resume RUN or --run-id NAME, not both")
        given = [OVERRIDE_FLAGS[k] for k in overrides if k != "report.lang"] + (["a spec file"] if args.spec else [])
        if given:
            raise ReportgenError(
                f"--resume {args.resume}: a resumed run continues with its archived settings, so "
                f"{', '.join(given)} cannot change them; drop them, or start a new run"
            )
        request = prepare(resume_request(Path(args.resume), **options))
    else:
        spec = load_spec(args.spec, overrides, {key: OVERRIDE_FLAGS[key] for key in overrides})
        request = prepare(RunRequest(spec, run_id=args.run_id, **options))
        if request.resume is None:
            for key, value in overrides.items():
                print(f"override: {key} = {value}")
    # The report process starts before torch is imported, so the two load side by side. Worker processes
    # start as copies of this one (fork=True): its threads and state are the command's own.
    with warm_report_process() as reports:
        outcome = execute(request, reports.render, ctrl_c_after_imports, reports.pdf_problem, fork=True)
    print(f"archived run: {outcome.run.path}")
    _show_report(outcome.report)
    if outcome.partial:
        print(
            f"reportgen: error: {outcome.run.path} is partial — {outcome.run.record().error}; the report is "
            f"marked as such; retrain the failed trials with: reportgen run --resume {outcome.run.path}",
            file=sys.stderr,
        )
        return EXIT_CHECK_FAILED
    return 0


def _render_options(args: argparse.Namespace):
    from reportgen.request import RenderOptions

    return RenderOptions(
        lang=args.lang,
        pdf=not args.no_pdf,
        formats=tuple(args.formats) if args.formats else None,
        checklist=args.checklist,
        single_file=args.single_file,
        cover=cover_options(args),
        summary_only=getattr(args, "summary_only", False),  # `render` only: a class's page 1 alone
    )


def _show_report(out: Path) -> None:
    """The report's warnings and the documents written."""
    for warning in json.loads((out / "summary.json").read_text("utf-8"))["warnings"]:
        print(f"warning: {warning['message']}", file=sys.stderr)
    for name in ("report.html", "report.pdf", "report.md"):
        if (out / name).exists():
            print(f"report: {out / name}")


def cover_options(args: argparse.Namespace) -> dict[str, Any]:
    """The cover block's command-line options (empty ones left out)."""
    from reportgen.cover import TEXT_KEYS, parse_author_option

    cover = {key: getattr(args, key) for key in TEXT_KEYS if getattr(args, key)}
    if args.author:
        cover["authors"] = [parse_author_option(text) for text in args.author]
    return cover


def _render(args: argparse.Namespace) -> int:
    """One run folder → its report; several → one combined report, output/<combined id>/ (report/combine.py)."""
    from reportgen.report.render import render_report
    from reportgen.request import check_checklist

    runs = [Path(run) for run in args.runs]
    check_checklist(args.checklist)
    options = _render_options(args)
    require_pdf_support(options.documents())
    print(f"archived run{'s' if len(runs) > 1 else ''}: {', '.join(map(str, runs))}")
    options = dataclasses.replace(options, output_root=Path(args.output_dir), allow_incomplete=args.allow_incomplete)
    _show_report(render_report(runs[0] if len(runs) == 1 else runs, options))
    return 0


def _params(args: argparse.Namespace) -> int:
    from reportgen.models.registry import parse_model_ref
    from reportgen.models.sources import check_reference

    refs = [parse_model_ref(text) for text in args.model]
    for ref in refs:  # from source text, as `run` does: a misspelt name is refused before torch loads
        check_reference(ref)

    from reportgen.measure.audit_text import format_audit
    from reportgen.measure.mac_text import format_macs
    from reportgen.measure.macs import check_macs_claim, count_macs, macs_claim_note
    from reportgen.measure.params import audit_model, check_claim, parse_input_shape
    from reportgen.measure.widths import match_mlp
    from reportgen.models.registry import create_model
    from reportgen.report.i18n import wording

    shape, words = parse_input_shape(args.input), wording(args.lang)
    failed = False
    for ref in refs:
        model = create_model(ref, input_shape=shape)
        audit = audit_model(model, shape, name=ref.label)
        macs = count_macs(model, shape, -1 if audit.torchinfo_total < 0 else None)  # -1: torchinfo failed already
        audit.cost = {"macs": macs.to_dict()}  # JSON and CSV carry the MACs per layer with the audit
        print(format_audit(audit, args.format, words))
        if args.format in ("table", "markdown"):
            print(format_macs(macs, ref.label, args.format, words))
        if args.match_mlp:
            inputs = 1
            for size in shape:
                inputs *= size
            hidden, achieved = match_mlp(audit.total, in_features=inputs, depth=args.match_mlp)
            print(
                f"MLP with about as many parameters as {ref.label} ({audit.total:,}): "
                f"mlp?hidden={list(hidden)} → {achieved:,} ({100 * (achieved - audit.total) / audit.total:+.2f}%)"
            )
        problems = [check_claim(audit, args.expect, args.expect_no_bias)]
        if args.expect_macs is not None:  # both claims are checked: a wrong count of either is shown
            problems.append(check_macs_claim(macs, args.expect_macs))
            if note := macs_claim_note(macs, args.expect_macs):
                print(f"{ref.label}: {note}")
        problem = "; ".join(filter(None, problems))
        if problem:
            print(f"{ref.label}: {problem}", file=sys.stderr)
            failed = True
    return EXIT_CHECK_FAILED if failed else 0


def _list(args: argparse.Namespace) -> int:
    from reportgen.run.listing import list_runs

    print(list_runs(Path(args.runs_dir)))
    return 0


def _models(args: argparse.Namespace) -> int:
    from reportgen.models.registry import describe_model, list_models

    for name in list_models(args.pattern):
        print(f"{name:22s} {describe_model(name)}")
    return 0


def _report_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-pdf", action="store_true", help="skip the PDF (HTML, Markdown, CSV and JSON only)")
    parser.add_argument(
        "--single-file", action="store_true", help="make report.html self-contained (stylesheet and figures inlined)"
    )
    parser.add_argument("--checklist", help="assignment checklist: 'assignment' or a checklist TOML file")
    parser.add_argument(
        "--format",
        dest="formats",
        action="append",
        choices=FORMATS,
        help="write only these documents (repeatable; default: html, pdf and md); "
        "CSV and JSON are always written, tables.tex with md; the documents not named are kept",
    )
    cover = parser.add_argument_group("cover block (over the spec's [report] keys)")
    for key in ("title", "course", "professor", "department", "date"):
        cover.add_argument(f"--{key}", help=f"report {key}" + (" (submission date)" if key == "date" else ""))
    cover.add_argument(
        "--author",
        action="append",
        metavar="NAME[:STUDENT_ID]",
        help="an author, repeatable: --author 'Hong Gildong:20241234'",
    )


class _Parser(argparse.ArgumentParser):
    """Command-line mistakes are one line too (argparse prints the usage first), exit code 2."""

    def error(self, message: str):
        self.exit(EXIT_USER_ERROR, f"reportgen: error: {message} (see {self.prog} --help)\n")

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        """A value outside an option's choices says which one was meant (`--lang kr`: did you mean 'ko'?)."""
        wrong = action.choices is not None and isinstance(value, str) and value not in action.choices
        if wrong and (hint := did_you_mean(value, action.choices, quote=True)):
            choices = ", ".join(map(str, action.choices))
            raise argparse.ArgumentError(action, f"invalid choice: {value!r} (choose from {choices}); {hint}")
        super()._check_value(action, value)


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer ≥ 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer ≥ 1, got {value}")
    return value


def _flag_type(setting: Setting) -> type:
    # Only the type is parsed here: ranges and choices are checked by the spec, so a flag and the same
    # key in a TOML file get the same one-line error.
    if setting.integer:
        return int
    return float if setting.low is not None else str


def _flag_help(setting: Setting) -> str:
    if setting.choices:
        allowed = "one of " + ", ".join(setting.choices)
    elif setting.integer:
        allowed = f"{int(setting.low)} to {int(setting.high):,}"
    else:
        allowed = f"{setting.low:g} to {setting.high:g}"
    return f"{setting.label}: {allowed}; overrides the spec's {_spec_key(setting.name)}"


def build_parser() -> argparse.ArgumentParser:
    from reportgen.data import DATASETS
    from reportgen.languages import DEFAULT_LANGUAGE, LANGUAGES
    from reportgen.measure.audit_text import FORMATS as AUDIT_FORMATS
    from reportgen.request import DEFAULT_WORKERS  # the same default as compare()

    parser = _Parser(prog="reportgen", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="train every model of a spec, archive the run, render the report")
    run.add_argument("spec", nargs="?", help="experiment TOML (default: the embedded default experiment)")
    run.add_argument("--dataset", choices=DATASETS)
    run.add_argument(
        "--data-dir",
        help="folder with the four IDX files (.gz or raw); for cifar10, the one holding cifar-10-batches-py",
    )
    run.add_argument(
        "--models",
        help="comma-separated model references, replacing the spec's models "
        "(commas inside [...] or quotes belong to the reference: 'mlp?hidden=[75,32],lenet5')",
    )
    for name, setting in TRAIN_FLAGS.items():
        flag = OVERRIDE_FLAGS[_spec_key(name)]
        metavar = "{" + ",".join(setting.choices) + "}" if setting.choices else name.upper()
        run.add_argument(flag, type=_flag_type(setting), metavar=metavar, help=_flag_help(setting))
    run.add_argument("--train-subset", type=int, help="train on this many images (seeded random choice)")
    run.add_argument(
        "--validation", type=float, help="hold out this fraction of the training images to choose epochs on (0.1)"
    )
    run.add_argument("--test-subset", type=int, help="test on this many images (seeded random choice)")
    run.add_argument("--device", help="auto (default), cpu, cuda, cuda:N")
    run.add_argument("--lang", choices=LANGUAGES)
    run.add_argument(
        "--run-id",
        help="name of the run folder (default: date-time-random); "
        "an unfinished run with this id is resumed (with its archived settings)",
    )
    run.add_argument("--resume", metavar="RUN", help="continue an interrupted run folder from its last epoch")
    run.add_argument(
        "--executor",
        choices=("auto", "local", "process", "ray"),
        default="auto",
        help="where trials run: auto (CPU: parallel worker processes, CUDA: this process), "
        "local (this process, one after another), process, or ray (pip install .[ray])",
    )
    run.add_argument(
        "--workers",
        type=_at_least_one,
        default=DEFAULT_WORKERS,
        help="worker processes for --executor process/auto (1 thread each), at least 1",
    )
    run.add_argument(
        "--max-trials",
        type=_at_least_one,
        metavar="N",
        help="refuse sweeps of more than N trials (default 1000; spec key max_trials)",
    )
    run.add_argument(
        "--address",
        metavar="ADDR",
        help="with --executor ray: the Ray cluster, e.g. 10.0.0.5:6379 (default: a private local "
        "instance on 127.0.0.1); --runs-dir must be on storage every node sees",
    )
    run.add_argument("--runs-dir", default="runs")
    run.add_argument("--output-dir", default="output")
    _report_options(run)
    run.set_defaults(func=_run)

    render = sub.add_parser("render", help="re-render a report from an archived run, without training")
    render.add_argument(
        "runs",
        nargs="+",
        metavar="run",
        help="run folder, e.g. runs/20261123-101500-ab12cd; several make one combined report",
    )
    render.add_argument("-o", "--output-dir", default="output")
    render.add_argument("--lang", choices=LANGUAGES)
    render.add_argument(
        "--allow-incomplete", action="store_true", help="render an incomplete or altered run anyway, marked as such"
    )
    render.add_argument(
        "--summary-only",
        action="store_true",
        help="for a class of hand-ins (runs by different authors): the class pages only, no section per student",
    )
    _report_options(render)
    render.set_defaults(func=_render)

    params = sub.add_parser("params", help="parameter audit: per-layer formulas, checked against torchinfo")
    params.add_argument("model", nargs="+", help="registry name or module:Class, optional ?key=value&...")
    params.add_argument("--input", default="1x28x28", help="input shape without batch, e.g. 3x224x224")
    claim = params.add_mutually_exclusive_group()
    claim.add_argument("--expect", type=int, help="claimed total; exit 1 with the difference if wrong")
    claim.add_argument("--expect-no-bias", type=int, help="claimed total without bias terms")
    params.add_argument(
        "--expect-macs",
        type=int,
        metavar="N",
        help="claimed multiply-adds per image (1 MAC = 2 FLOPs); exit 1 with the difference if wrong",
    )
    params.add_argument("--format", default="table", choices=AUDIT_FORMATS)
    params.add_argument(
        "--lang",
        default=DEFAULT_LANGUAGE,
        choices=LANGUAGES,
        help="language of the audit's words (JSON keys stay English)",
    )
    params.add_argument(
        "--match-mlp",
        type=int,
        metavar="DEPTH",
        help="also solve the hidden widths of a DEPTH-layer MLP with about as many parameters",
    )
    params.set_defaults(func=_params)

    runs = sub.add_parser("list", help="list archived runs with state, date, models, best accuracy")
    runs.add_argument("--runs-dir", default="runs")
    runs.set_defaults(func=_list)

    models = sub.add_parser("models", help="list registered models")
    models.add_argument("pattern", nargs="?", default="*", help="wildcard, e.g. 'lenet*'")
    models.set_defaults(func=_models)
    return parser


def main(argv: list[str] | None = None) -> int:
    """The `reportgen` command; argv None: this process is the command (sys.argv), about to exit."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2, one line printed by _Parser.error)
        return exc.code if isinstance(exc.code, int) else EXIT_USER_ERROR
    try:
        with ctrl_c_stops():
            return args.func(args)
    except ReportgenError as exc:
        print(f"reportgen: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("reportgen: interrupted", file=sys.stderr)
        return 130
    finally:
        if argv is None:
            # The interpreter's last garbage collection walks every object torch, matplotlib and WeasyPrint
            # created: 1.5–2 s of a tiny run's wall time, measured. Frozen objects are skipped by it; the
            # process is ending and every file it wrote is closed, so nothing is lost. (Not when main() is
            # called in-process, e.g. by tests: frozen objects would never be collected there.)
            gc.freeze()


if __name__ == "__main__":
    sys.exit(main())
