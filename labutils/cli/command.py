"""Command line: ``python -m labutils {data,report,sweep,results,check,bench,bench-predict,predict,standin} ...``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from ..data import DataNotFoundError, DataValidationError
from .parser import DEBUG_VARIABLE, build_parser

__all__ = ["main"]


def _data(args: argparse.Namespace) -> int:
    from ..sources import load_dataset

    dataset = load_dataset(
        args.data_dir, download=not args.no_download, synthetic_fallback=not args.no_standin
    )
    summary = dataset.summary()
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"source:    {summary['data_source']} ({summary['origin']})")
    for split in ("train", "test"):
        name = dataset.files.train if split == "train" else dataset.files.test
        checksum = summary["checksums"][name.name.removesuffix(".gz")]
        print(
            f"{split + ':':<10} {name}  [{checksum}]  {summary[split]['rows']} rows, {summary[split]['classes']} classes"
        )
    if summary["data_source"] == "synthetic":
        print("WARNING: this is the SYNTHETIC STAND-IN, not the real Sign Language MNIST data.")
    elif not summary["checksums_verified"]:
        print("WARNING: CHECKSUM MISMATCH — the files differ from the Kaggle originals.")
    return 0


def _report(args: argparse.Namespace) -> int:
    from ..report import run_report

    overrides = _named_values(args.parameter, option="-p")
    result = run_report(
        args.profile,
        data_dir=args.data_dir,
        out=args.out,
        only=args.only,
        notebooks_dir=args.notebooks,
        overrides=overrides,
        force=args.force,
    )
    failed = [entry.name for entry in result.notebooks if entry.status not in {"completed", "cached"}]
    print(
        f"index: {args.out}/index.html ({len(result.notebooks) - len(failed)}/{len(result.notebooks)} "
        f"notebooks completed in {result.seconds:.1f} s)"
    )
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from ..report.parameters import parse_parameter_value
    from ..sweep.run import run_sweep

    values: dict[str, list[object]] = {}
    for name, *texts in args.parameter:
        if name in values:
            raise ValueError(f"-p {name} is given twice; give all its values after one -p")
        if not texts:
            raise ValueError(f"-p {name}: give at least one value")
        values[name] = [parse_parameter_value(text, name) for text in texts]
    summary = run_sweep(
        args.notebook,
        values,
        seeds=args.seeds,
        profile=args.profile,
        data_dir=args.data_dir,
        reports=args.reports,
        out=args.out,
        workers=args.workers,
        scheduler=args.scheduler,
        force=args.force,
    )
    failed = summary[summary["status"] == "failed"]
    out = summary.attrs["out"]
    print(
        f"summary: {out}/summary.csv and {out}/index.html ({len(summary) - len(failed)}/{len(summary)} points finished)"
    )
    return 1 if len(failed) else 0


def _named_values(pairs: Sequence[Sequence[str]], option: str) -> dict[str, object]:
    """``-p NAME VALUE`` or ``--set NAME=VALUE`` options as {NAME: value}, each value a Python literal
    (else the text); a name given twice is an error."""
    from ..report.parameters import parse_parameter_value

    values: dict[str, object] = {}
    for name, text in pairs:
        if name in values:
            raise ValueError(f"{option} {name} is given twice")
        values[name] = parse_parameter_value(text, name, option=option)
    return values


def _bench(args: argparse.Namespace) -> int:
    from ..bench import markdown_table, run_bench
    from ..results.readme import update_readme

    results = run_bench(
        args.data_dir,
        out=args.out,
        seeds=args.seeds,
        budget=args.budget,
        quick=args.quick,
        contenders=args.contenders,
        resume=args.resume,
        overrides={"train_rows": args.train_rows, **_named_values(args.assignments, option="--set")},
        validation_from=args.validation_from,
        workers=args.workers,
        scheduler=args.scheduler,
    )
    table = markdown_table(results)
    print(table)
    if args.readme:
        update_readme(args.readme, table)
        print(f"wrote the table into {args.readme}")
    return 0


def _results(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..report.table import results_markdown
    from ..results.readme import update_readme

    run_file = Path(args.reports) / "run.json"
    if not run_file.exists():
        raise FileNotFoundError(f"{run_file} not found: run the report first")
    from ..results.schema import check_metrics_files, read_run

    run = read_run(run_file)
    check_metrics_files(run, args.reports)  # the table stands for the notebooks' files as they are now
    table = results_markdown(run)
    print(table)
    if args.readme:
        update_readme(args.readme, table, section="report")
        print(f"wrote the table into {args.readme}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from ..report.browser import check_report

    checks = check_report(args.reports, screenshots=args.screenshots)
    for check in checks:
        problems = [
            *check.errors,
            *(f"image did not decode: {source}" for source in check.broken_images),
            *(f"link does not resolve: {link}" for link in check.broken_links),
        ]
        print(
            f"{check.page}: {'ok' if check.ok else 'PROBLEMS'} ({check.images} images, {check.links} local links; "
            f"screenshot {check.screenshot})"
        )
        for problem in problems:
            print(f"  {problem}")
    bad = [check.page for check in checks if not check.ok]
    if bad:
        print(f"error: {len(bad)} of {len(checks)} pages have problems: {', '.join(bad)}", file=sys.stderr)
    return 1 if bad else 0


def _predict(args: argparse.Namespace) -> int:
    from ..display import plural
    from ..predict.command import best_model_file, iter_predictions
    from ..predict.explain import DEFAULT_EXPLAIN_LIMIT, ExplanationWriter

    if args.explain_limit is not None and args.explain is None:
        raise ValueError("--explain-limit needs --explain DIR (the folder for the pictures)")
    explain = (
        None
        if args.explain is None
        else ExplanationWriter(args.explain, args.explain_limit or DEFAULT_EXPLAIN_LIMIT)
    )
    model = args.model or best_model_file(args.reports)
    predictions = iter_predictions(args.inputs, model, batch_size=args.batch_size, explain=explain)
    failed, labelled, written = [], set(), 0
    if not args.json:
        print(f"model: {model}", flush=True)
    for prediction in predictions:
        if args.json:  # one array, written as it goes: an object per line
            print(("[\n" if written == 0 else ",\n") + json.dumps(prediction.as_dict()), end="")
        else:
            where = prediction.input + (f" row {prediction.row}" if prediction.row is not None else "")
            if prediction.error:
                print(_one_line(f"{where}: error: {prediction.error}"))
            else:
                letters = ", ".join(f"{t['letter']} {t['probability']:.3f}" for t in prediction.top3)
                warned = "".join(f" (warning: {text})" for text in prediction.warnings)
                print(_one_line(f"{where}: {letters}{warned}"))
        if prediction.error:
            failed.append(prediction)
        if prediction.label_in_file is not None:
            labelled.add(prediction.input)
        written += 1
    if args.json:
        print("\n]" if written else "[]")
    for name in sorted(labelled):
        print(
            _one_line(
                f"note: {name}: its label column is not used for predicting (passed on as label_in_file)"
            ),
            file=sys.stderr,
        )
    if explain is not None:
        print(
            _one_line(
                f"note: {plural(explain.written, 'picture')} of where the network looked written to {explain.folder}"
            ),
            file=sys.stderr,
        )
    for prediction in failed:
        print(_one_line(f"error: {prediction.error}"), file=sys.stderr)
    return 1 if failed else 0


def _one_line(text: str) -> str:
    """``text`` with each character that is not printable (a newline in a file name) written as its
    escape, as ``--json`` writes it: one answer is one line."""
    return "".join(character if character.isprintable() else repr(character)[1:-1] for character in text)


def _bench_predict(args: argparse.Namespace) -> int:
    from ..predict.bench import run_predict_bench

    print(run_predict_bench(args.rows, args.out, args.model, batch_size=args.batch_size))
    print(f"wrote {args.out}/predict_memory.json and predict_memory.md")
    return 0


def _standin(args: argparse.Namespace) -> int:
    from ..datasets.standin import write_standin

    folder = write_standin(args.out, args.train_rows, args.test_rows, seed=args.seed)
    print(f"wrote the synthetic stand-in to {folder}")
    return 0


def error_line(error: BaseException) -> str:
    """The one ``error:`` line for an exception a command could not go on after."""
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        where = error.filename if error.filename2 is None else f"{error.filename} -> {error.filename2}"
        return f"error: {where}: {error.strerror}"
    if isinstance(error, DataNotFoundError | DataValidationError | FileNotFoundError | ValueError | OSError):
        return f"error: {error}"
    if isinstance(error, MemoryError | RecursionError):
        return f"error: out of memory or nesting depth ({type(error).__name__}): an input is too large or too deeply nested"
    return (
        f"error: internal error ({type(error).__name__}: {error}); rerun with --debug for the traceback, "
        "and please report it"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; whatever stops it prints one ``error:`` line and returns 1 (``--debug``: the traceback)."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    debug = os.environ.get(DEBUG_VARIABLE, "") not in {"", "0"}
    if "--debug" in arguments:
        arguments.remove("--debug")
        debug = True
    args = build_parser().parse_args(arguments)
    handlers = {
        "data": _data,
        "report": _report,
        "sweep": _sweep,
        "results": _results,
        "check": _check,
        "predict": _predict,
        "bench": _bench,
        "bench-predict": _bench_predict,
        "standin": _standin,
    }
    handler = handlers[args.command]
    from ..runtime.quiet import quiet_native_stderr

    try:
        with quiet_native_stderr():  # TensorFlow's start-up lines, never a warning
            return handler(args)
    except KeyboardInterrupt as error:
        signal_name = getattr(error, "signal_name", "SIGINT")
        print(f"interrupted ({signal_name})", file=sys.stderr)
        return getattr(error, "exit_status", 130)
    except Exception as error:
        if debug:
            raise
        print(error_line(error), file=sys.stderr)
        return 1
