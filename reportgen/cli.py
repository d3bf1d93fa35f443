"""Command line: `reportgen run|render|params|list|models`. Any user mistake → one line, exit ≠ 0."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from .errors import ReportgenError

EXIT_USER_ERROR = 2
EXIT_CHECK_FAILED = 1


def _run(args: argparse.Namespace) -> int:
    from .archive import check_writable, open_run, validate_run_id
    from .runner import resume_experiment, run_experiment
    from .spec import load_spec, parse_spec

    for folder in (args.runs_dir, args.output_dir):
        check_writable(Path(folder))
    if args.run_id is not None:
        validate_run_id(args.run_id)

    if args.resume:  # the same executor policy as the interrupted run, so thread counts (and numbers) match
        archived = parse_spec(open_run(args.resume).read("spec"), str(Path(args.resume) / "spec.json"))
        run = resume_experiment(Path(args.resume), _executor(args, archived))
        return _report(run.path, args, run.read("spec").get("lang", "en"))
    overrides: dict[str, Any] = {
        "data.dataset": args.dataset, "data.data_dir": args.data_dir, "data.train_subset": args.train_subset,
        "data.test_subset": args.test_subset, "train.epochs": args.epochs, "train.batch_size": args.batch_size,
        "train.lr": args.lr, "train.optimizer": args.optimizer, "train.loss": args.loss,
        "train.seeds": [args.seed] if args.seed is not None else None, "device": args.device,
        "report.lang": args.lang,
        "models": [{"name": n} for n in args.models.split(",")] if args.models else None,
    }
    for key, value in overrides.items():
        if value is not None:
            print(f"override: {key} = {value}")
    spec = load_spec(args.spec, overrides)
    run = run_experiment(spec, Path(args.runs_dir), args.run_id or None, executor=_executor(args, spec))
    return _report(run.path, args, spec.lang)


def _executor(args: argparse.Namespace, spec):
    if args.executor == "ray":
        if args.vectorize == "on":
            raise ReportgenError("--vectorize on needs --executor local (Ray runs one trial per task)")
        from .ray_executor import RayExecutor

        return RayExecutor(args.address)  # --runs-dir must be on storage that every node sees
    if args.address:
        raise ReportgenError("--address ADDR needs --executor ray")
    from .parallel import ProcessExecutor
    from .runner import LocalExecutor

    cuda = spec.device.startswith("cuda") or (spec.device == "auto" and torch_cuda_available())
    vectorize = {"on": True, "off": False}.get(args.vectorize, cuda)
    trials = len(spec.trials())
    if args.executor == "process" or (args.executor == "auto" and not cuda and not vectorize and trials > 1
                                      and args.workers > 1):
        return ProcessExecutor(workers=args.workers)
    return LocalExecutor(vectorize=vectorize)


def torch_cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def _report(run_path: Path, args: argparse.Namespace, lang: str | None) -> int:
    from .render import render_report

    print(f"archived run: {run_path}")
    out = render_report(run_path, args.output_dir, lang, allow_incomplete=getattr(args, "allow_incomplete", False),
                        pdf=not args.no_pdf, checklist=args.checklist, single_file=args.single_file)
    for warning in json.loads((out / "summary.json").read_text("utf-8"))["warnings"]:
        print(f"warning: {warning['message']}", file=sys.stderr)
    print(f"report: {out / 'report.html'}" + ("" if args.no_pdf else f"\nreport: {out / 'report.pdf'}"))
    return 0


def _render(args: argparse.Namespace) -> int:
    return _report(Path(args.run), args, args.lang)


def _params(args: argparse.Namespace) -> int:
    from .audit import audit_model, check_claim, format_audit, match_mlp, parse_input_shape
    from .registry import create_model, parse_model_ref

    shape = parse_input_shape(args.input)
    failed = False
    for text in args.model:
        ref = parse_model_ref(text)
        audit = audit_model(create_model(ref), shape, name=ref.label)
        print(format_audit(audit, args.format))
        if args.match_mlp:
            inputs = 1
            for size in shape:
                inputs *= size
            hidden, achieved = match_mlp(audit.total, in_features=inputs, depth=args.match_mlp)
            print(f"MLP with about as many parameters as {ref.label} ({audit.total:,}): "
                  f"mlp?hidden={list(hidden)} → {achieved:,} ({100 * (achieved - audit.total) / audit.total:+.2f}%)")
        problem = check_claim(audit, args.expect, args.expect_no_bias)
        if problem:
            print(f"{ref.label}: {problem}", file=sys.stderr)
            failed = True
    return EXIT_CHECK_FAILED if failed else 0


def _list(args: argparse.Namespace) -> int:
    from .catalog import list_runs

    print(list_runs(Path(args.runs_dir)))
    return 0


def _models(args: argparse.Namespace) -> int:
    from .registry import describe_model, list_models

    for name in list_models(args.pattern):
        print(f"{name:22s} {describe_model(name)}")
    return 0


def _report_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-pdf", action="store_true", help="skip the PDF (HTML, CSV and JSON only)")
    parser.add_argument("--single-file", action="store_true",
                        help="make report.html self-contained (stylesheet and figures inlined)")
    parser.add_argument("--checklist", help="assignment checklist: 'assignment' or a checklist TOML file")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reportgen", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="train every model of a spec, archive the run, render the report")
    run.add_argument("spec", nargs="?", help="experiment TOML (default: the embedded default experiment)")
    run.add_argument("--dataset", choices=("fashion-mnist", "mnist"))
    run.add_argument("--data-dir", help="folder with the four IDX files (.gz or raw)")
    run.add_argument("--models", help="comma-separated model names, replacing the spec's models")
    run.add_argument("--epochs", type=int)
    run.add_argument("--batch-size", type=int)
    run.add_argument("--lr", type=float)
    run.add_argument("--optimizer")
    run.add_argument("--loss")
    run.add_argument("--seed", type=int)
    run.add_argument("--train-subset", type=int, help="train on this many images (seeded random choice)")
    run.add_argument("--test-subset", type=int, help="test on this many images (seeded random choice)")
    run.add_argument("--device", help="auto (default), cpu, cuda, cuda:N")
    run.add_argument("--lang", choices=("en", "ko"))
    run.add_argument("--run-id", help="name of the run folder (default: date-time-random); "
                     "an unfinished run with this id is resumed")
    run.add_argument("--resume", metavar="RUN", help="continue an interrupted run folder from its last epoch")
    run.add_argument("--executor", choices=("auto", "local", "process", "ray"), default="auto",
                     help="where trials run: auto (CPU: parallel worker processes, CUDA: this process), "
                          "local (this process, one after another), process, or ray (pip install .[ray])")
    run.add_argument("--workers", type=int, default=min(2, len(os.sched_getaffinity(0))),
                     help="worker processes for --executor process/auto (1 thread each)")
    run.add_argument("--address", metavar="ADDR",
                     help="with --executor ray: the Ray cluster, e.g. 10.0.0.5:6379 (default: a private local "
                          "instance on 127.0.0.1); --runs-dir must be on storage every node sees")
    run.add_argument("--vectorize", choices=("auto", "on", "off"), default="auto",
                     help="train trials differing only in lr/momentum/weight decay as one stacked model "
                          "(auto: on with CUDA; measured 1.1-1.3x on a 2-core CPU)")
    run.add_argument("--runs-dir", default="runs")
    run.add_argument("--output-dir", default="output")
    _report_options(run)
    run.set_defaults(func=_run)

    render = sub.add_parser("render", help="re-render a report from an archived run, without training")
    render.add_argument("run", help="run folder, e.g. runs/20261123-101500-ab12cd")
    render.add_argument("--output-dir", default="output")
    render.add_argument("--lang", choices=("en", "ko"))
    render.add_argument("--allow-incomplete", action="store_true",
                        help="render an incomplete or altered run anyway, marked as such")
    _report_options(render)
    render.set_defaults(func=_render)

    params = sub.add_parser("params", help="parameter audit: per-layer formulas, checked against torchinfo")
    params.add_argument("model", nargs="+", help="registry name or module:Class, optional ?key=value&...")
    params.add_argument("--input", default="1x28x28", help="input shape without batch, e.g. 3x224x224")
    claim = params.add_mutually_exclusive_group()
    claim.add_argument("--expect", type=int, help="claimed total; exit 1 with the difference if wrong")
    claim.add_argument("--expect-no-bias", type=int, help="claimed total without bias terms")
    params.add_argument("--format", default="table", choices=("table", "csv", "json", "markdown"))
    params.add_argument("--match-mlp", type=int, metavar="DEPTH",
                        help="also solve the hidden widths of a DEPTH-layer MLP with about as many parameters")
    params.set_defaults(func=_params)

    runs = sub.add_parser("list", help="list archived runs with state, date, models, best accuracy")
    runs.add_argument("--runs-dir", default="runs")
    runs.set_defaults(func=_list)

    models = sub.add_parser("models", help="list registered models")
    models.add_argument("pattern", nargs="?", default="*", help="wildcard, e.g. 'lenet*'")
    models.set_defaults(func=_models)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ReportgenError as exc:
        print(f"reportgen: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("reportgen: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
