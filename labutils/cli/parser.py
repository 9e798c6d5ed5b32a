"""The command line's words: every command and option of ``python -m labutils``, and the checks of their values."""

from __future__ import annotations

import argparse

from ..bench import CONTENDERS

__all__ = ["DEBUG_VARIABLE", "build_parser"]

#: Set to 1 (or pass --debug) to see the traceback of an error instead of its one line.
DEBUG_VARIABLE = "LABUTILS_DEBUG"


def build_parser() -> argparse.ArgumentParser:
    """The command line's parser: every command, its options and their checks."""
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

    sweep = commands.add_parser(
        "sweep", help="one notebook over a grid of parameter values and seeds, on a Dask cluster"
    )
    sweep.add_argument("notebook", metavar="NOTEBOOK", help="the notebook, as --only takes it (e.g. 02)")
    sweep.add_argument(
        "--profile", choices=["quick", "full"], default="full", help="as for report (default: full)"
    )
    sweep.add_argument("--data-dir", help="folder holding the two CSV files (default as for 'data')")
    sweep.add_argument(
        "-p",
        "--parameter",
        nargs="+",
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="a parameter and the values it takes, e.g. -p WIDTH 16 32 -p POOLING max blur (Python literals, else text)",
    )
    sweep.add_argument(
        "--seeds", nargs="+", type=int, metavar="S", help="run every setting with each of these SEEDs"
    )
    sweep.add_argument(
        "--workers",
        type=int,
        help="Dask workers of the local cluster (default: one per core, at most one per point)",
    )
    sweep.add_argument(
        "--scheduler", metavar="ADDRESS", help="an existing Dask scheduler, e.g. tcp://10.0.0.5:8786"
    )
    sweep.add_argument("--out", help="output folder (default: sweeps/NOTEBOOK_NAME)")
    sweep.add_argument(
        "--reports",
        default="reports",
        help="the report whose earlier notebooks' results the notebook reads (default: reports)",
    )
    sweep.add_argument(
        "--force", action="store_true", help="re-run every point, even those whose inputs did not change"
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
        "--workers",
        type=int,
        help="Dask workers of the local cluster, each job in a fresh process (default: 1, so that the jobs' seconds compare)",
    )
    bench.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run the jobs on an existing Dask scheduler, e.g. tcp://10.0.0.5:8786",
    )
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
        help="pictures and CSV rows read and answered at a time (default: 512); the model reads at most 512 a call",
    )
    predict.add_argument(
        "--explain",
        metavar="DIR",
        help="write into DIR, for each answer, a picture of what the network saw and where it looked "
        "(Grad-CAM) with its top-3 letters",
    )
    predict.add_argument(
        "--explain-limit",
        type=_explain_limit,
        default=None,
        metavar="N",
        help="with --explain, the first N rows of each CSV file are explained (default: 100); every picture is",
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


def _assignment(text: str) -> tuple[str, str]:
    """One ``--set RECIPE.FIELD=VALUE`` as (name, value text)."""
    name, equals, value = text.partition("=")
    if not equals or not name.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: write it as RECIPE.FIELD=VALUE, e.g. task2.width=16")
    return name.strip(), value.strip()


def _batch_size(text: str) -> int:
    from ..predict.command import MAX_BATCH_SIZE

    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not 1 <= value <= MAX_BATCH_SIZE:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to {MAX_BATCH_SIZE}, got {text!r}")
    return value


def _explain_limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of rows, at least 1, got {text!r}")
    return value
