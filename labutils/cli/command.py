"""Command line: ``python -m labutils {data,report,results,check,bench,bench-predict,predict,standin} ...``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from ..bench import CONTENDERS
from ..data import DataNotFoundError, DataValidationError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m labutils",
        description="Sign Language MNIST lab report: data checks, the report runner and the stand-in generator.",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help=f"show the traceback of an error instead of its one line (also: {DEBUG_VARIABLE}=1); anywhere on the line",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = commands.add_parser(
        "data", help="find, verify and validate the two CSV files and say what was found"
    )
    data.add_argument(
        "--data-dir",
        help="folder holding sign_mnist_train.csv and sign_mnist_test.csv (plain or .gz); "
        "default: $SIGN_MNIST_DIR, then data/, then a kagglehub download, then the stand-in",
    )
    data.add_argument("--no-download", action="store_true", help="do not try kagglehub")
    data.add_argument(
        "--no-standin", action="store_true", help="fail instead of generating the synthetic stand-in"
    )
    data.add_argument("--json", action="store_true", help="print the summary as JSON")

    report = commands.add_parser("report", help="execute the notebooks and write reports/index.html")
    report.add_argument(
        "--profile",
        choices=["quick", "full"],
        default="full",
        help="tiny settings or the real report (default: full)",
    )
    report.add_argument("--data-dir", help="folder holding the two CSV files (default as for 'data')")
    report.add_argument("--out", default="reports", help="output folder (default: reports)")
    report.add_argument(
        "--only", nargs="+", metavar="NN", help="run only the notebooks whose names start with these prefixes"
    )
    report.add_argument("--notebooks", help="folder of notebook sources NN_name.py (default: notebooks/)")
    report.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="override a notebook parameter, e.g. -p EPOCHS 3 -p WEIGHTS None (a Python literal, else text)",
    )
    report.add_argument(
        "--force", action="store_true", help="re-run every notebook, even those whose inputs did not change"
    )

    bench = commands.add_parser(
        "bench", help="the seed report's recipe and ours side by side: accuracy, time, speed"
    )
    bench.add_argument(
        "--data-dir", help="folder holding the two CSV files (the real data; default as for 'data')"
    )
    bench.add_argument(
        "--quick", action="store_true", help="tiny smoke run on the generated stand-in (unless --data-dir)"
    )
    bench.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=[0, 1, 2],
        help="one training per contender and seed; the reference, the longest, trains with the first only (default: 0 1 2)",
    )
    bench.add_argument("--budget", type=float, help="cap each contender's training at this many seconds")
    bench.add_argument(
        "--contenders",
        nargs="+",
        default=list(CONTENDERS),
        choices=CONTENDERS,
        help="which contenders to run (default: all)",
    )
    bench.add_argument(
        "--train-rows",
        choices=["all", "split"],
        default="all",
        help="train every contender on all training rows (default; as the report's final networks) or on "
        "the grouped split's training side (then the grouped-validation-test gap is measured too)",
    )
    bench.add_argument(
        "--set",
        dest="assignments",
        type=_assignment,
        action="append",
        default=[],
        metavar="RECIPE.FIELD=VALUE",
        help="set a field of a contender's recipe, e.g. --set task2.width=16 --set task3.ema_momentum=0 "
        "--set task3.augmentation.noise=0.05 (recipes: reference, task2, task3, transfer; a field is its "
        "notebook parameter in lower case; the value is a Python literal)",
    )
    bench.add_argument("--out", default="bench", help="output folder (default: bench)")
    bench.add_argument(
        "--readme", help="also write the results table into this README between its bench markers"
    )
    bench.add_argument(
        "--validation-from",
        metavar="DIR",
        help="the output folder of a --train-rows split run with the same settings and seeds: its grouped "
        "validation's robustness is set against this run's final networks (checked before anything trains)",
    )
    bench.add_argument(
        "--resume",
        action="store_true",
        help="reuse the jobs an earlier run saved in OUT/jobs with the same settings, data and code",
    )

    check = commands.add_parser(
        "check",
        help="open a rendered report in headless Chromium: console errors, broken images and links, screenshots",
    )
    check.add_argument(
        "--reports", default="reports", help="report folder holding index.html (default: reports)"
    )
    check.add_argument(
        "--screenshots", help="folder for the full-page screenshots (default: REPORTS/screenshots)"
    )

    results = commands.add_parser(
        "results", help="print a report run's models as a Markdown table (optionally into a README)"
    )
    results.add_argument(
        "--reports", default="reports", help="report folder holding run.json (default: reports)"
    )
    results.add_argument(
        "--readme",
        help="write the table into this README between <!-- report:begin --> and <!-- report:end -->",
    )

    predict = commands.add_parser("predict", help="top-3 letters for picture files or CSV rows")
    predict.add_argument(
        "inputs",
        nargs="+",
        help="PNG/JPEG/TIFF/... files of any size, colour and bit depth, or CSV files of 784 pixel "
        "columns (with or without a label column and a header)",
    )
    predict.add_argument(
        "--model", help="a .keras model (default: the most accurate model of the latest report run)"
    )
    predict.add_argument(
        "--reports", default="reports", help="report folder holding run.json (default: reports)"
    )
    predict.add_argument(
        "--json", action="store_true", help="print one JSON array with an object per picture or CSV row"
    )
    predict.add_argument(
        "--batch-size",
        type=_batch_size,
        default=512,
        help="images per model call, and CSV rows read at a time (default: 512)",
    )

    bench_predict = commands.add_parser(
        "bench-predict", help="peak memory and speed of predict against the number of CSV rows"
    )
    bench_predict.add_argument(
        "--rows",
        type=int,
        nargs="+",
        default=[1000, 10000, 100000],
        help="row counts (default: 1000 10000 100000)",
    )
    bench_predict.add_argument("--model", help="a .keras model (default: a fresh compact network)")
    bench_predict.add_argument("--batch-size", type=_batch_size, default=512)
    bench_predict.add_argument("--out", default="bench", help="output folder (default: bench)")

    standin = commands.add_parser("standin", help="write the synthetic stand-in in the Kaggle CSV format")
    standin.add_argument("--out", required=True, help="folder to write into")
    standin.add_argument("--train-rows", type=int, default=27455)
    standin.add_argument("--test-rows", type=int, default=7172)
    standin.add_argument("--seed", type=int, default=0)
    return parser


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


def _assignment(text: str) -> tuple[str, str]:
    """One ``--set RECIPE.FIELD=VALUE`` as (name, value text)."""
    name, equals, value = text.partition("=")
    if not equals or not name.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: write it as RECIPE.FIELD=VALUE, e.g. task2.width=16")
    return name.strip(), value.strip()


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
    )
    table = markdown_table(results)
    print(table)
    if args.readme:
        update_readme(args.readme, table)
        print(f"wrote the table into {args.readme}")
    return 0


def _results(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..report.index import results_markdown
    from ..results.readme import update_readme

    run_file = Path(args.reports) / "run.json"
    if not run_file.exists():
        raise FileNotFoundError(f"{run_file} not found: run the report first")
    from ..results.schema import read_run

    table = results_markdown(read_run(run_file))
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


def _batch_size(text: str) -> int:
    from ..predict.command import MAX_BATCH_SIZE

    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not 1 <= value <= MAX_BATCH_SIZE:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to {MAX_BATCH_SIZE}, got {text!r}")
    return value


def _predict(args: argparse.Namespace) -> int:
    from ..predict.command import best_model_file, iter_predictions

    model = args.model or best_model_file(args.reports)
    predictions = iter_predictions(args.inputs, model, batch_size=args.batch_size)
    failed, labelled, written = [], set(), 0
    if not args.json:
        print(f"model: {model}", flush=True)
    for prediction in predictions:
        if args.json:  # one array, written as it goes: an object per line
            print(("[\n" if written == 0 else ",\n") + json.dumps(prediction.as_dict()), end="")
        else:
            where = prediction.input + (f" row {prediction.row}" if prediction.row is not None else "")
            if prediction.error:
                print(f"{where}: error: {prediction.error}")
            else:
                letters = ", ".join(f"{t['letter']} {t['probability']:.3f}" for t in prediction.top3)
                print(f"{where}: {letters}" + "".join(f" (warning: {text})" for text in prediction.warnings))
        if prediction.error:
            failed.append(prediction)
        if prediction.label_in_file is not None:
            labelled.add(prediction.input)
        written += 1
    if args.json:
        print("\n]" if written else "[]")
    for name in sorted(labelled):
        print(
            f"note: {name}: its label column is not used for predicting (passed on as label_in_file)",
            file=sys.stderr,
        )
    for prediction in failed:
        print(f"error: {prediction.error}", file=sys.stderr)
    return 1 if failed else 0


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


#: Set to 1 (or pass --debug) to see the traceback of an error instead of its one line.
DEBUG_VARIABLE = "LABUTILS_DEBUG"


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
    args = _parser().parse_args(arguments)
    handlers = {
        "data": _data,
        "report": _report,
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
