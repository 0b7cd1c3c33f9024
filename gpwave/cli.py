"""The ``gpwave`` command line: ``gpwave data|train|evaluate|detect|models|fingerprint|book``.

Each sub-command is a thin wrapper over one module's public function. Exit status:
0 when everything was done (every file scored), 1 when some inputs failed (e.g.
``detect`` could not score a file; each failure is reported), 2 for usage errors and
bad input -- argparse's usage errors and every :class:`gpwave.errors.GpwaveError`,
printed as one ``gpwave: error: ...`` line without a traceback. JSON output is strict
(``null``, never ``NaN``).
"""

from __future__ import annotations

import argparse
import errno
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, get_args

from gpwave import __version__
from gpwave.constants import N_BOOT, SAMPLE_RATE, DatasetName, StoreDtype
from gpwave.errors import GpwaveError

#: Deepest packet level ``fingerprint`` accepts: :data:`gpwave.transforms.MAX_LEVEL`
#: (not imported here, to keep ``gpwave --help`` free of torch; a test checks both agree).
MAX_LEVEL = 14


# --- argument types: bad values are usage errors (exit 2) before any work ------------------
def _int_at_least(low: int, high: int | None = None) -> Any:
    """An argparse type: an integer in ``low..high`` (no upper bound if None)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low or (high is not None and value > high):
            bound = f"in {low}..{high}" if high is not None else f">= {low}"
            raise argparse.ArgumentTypeError(f"{text} is not an integer {bound}")
        return value

    parse.__name__ = "integer"
    return parse


def _number_in(low: float, high: float, low_open: bool = False, what: str = "a number") -> Any:
    """An argparse type: a finite number in ``[low, high]`` (``(low, high]`` if low_open)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        above = value > low if low_open else value >= low
        if not math.isfinite(value) or not above or value > high:
            span = f"{'(' if low_open else '['}{low:g}, {high:g}]"
            raise argparse.ArgumentTypeError(f"{text} is not {what} in {span}")
        return value

    parse.__name__ = "number"
    return parse


#: A decision threshold on the fake probability.
_probability = _number_in(0.0, 1.0)
#: A frame length: more than 0 s and at most an hour.
_positive_seconds = _number_in(0.0, 3600.0, low_open=True, what="a number of seconds")


def _device(text: str) -> str:
    """An argparse type: a torch device string (cpu, cuda, cuda:N, mps) or auto."""
    if text == "auto":
        return text
    import torch

    try:
        torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a device (cpu, cuda, cuda:N, mps or auto)"
        ) from None
    return text


def _wavelet(text: str) -> str:
    """An argparse type: a discrete PyWavelets wavelet name."""
    import pywt

    if text not in pywt.wavelist(kind="discrete"):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a discrete PyWavelets wavelet (e.g. haar, db4, sym5, coif4)"
        )
    return text


def _report_skipped(skipped: Any) -> None:
    """Print every skipped file (a DataFrame with file, problem) to stderr."""
    for row in skipped.itertuples(index=False):
        print(f"gpwave: skipped {row.file}: {row.problem}", file=sys.stderr)


def _print_json(obj: object, indent: int | None = 2) -> None:
    from gpwave.report import to_json

    sys.stdout.write(to_json(obj, indent=indent) + "\n")


# --- gpwave data ------------------------------------------------------------------------
def _cmd_data_fetch(args: argparse.Namespace) -> int:
    from gpwave import download

    path = download.fetch(args.name, dest=args.dest, mirror=args.mirror)
    print(path)
    return 0


def _cmd_data_arrange(args: argparse.Namespace) -> int:
    from gpwave import download

    path = download.arrange(
        wavefake=args.wavefake, ljspeech=args.ljspeech, extension=args.extension, out=args.out
    )
    print(path)
    return 0


def _cmd_data_prepare(args: argparse.Namespace) -> int:
    from gpwave import data, store

    cfg = data.DataConfig(
        root=args.data_dir,
        sample_rate=args.sample_rate,
        seconds=args.seconds,
        only_use=args.only_use,
        only_test_folders=args.only_test or (),
        seed=args.seed,
        dtype=args.dtype,
    )
    prepared = store.prepare_store(cfg, store_dir=args.store)
    counts = prepared.index.groupby(["folder", "split"]).size().unstack(fill_value=0)
    print(counts.to_string(), file=sys.stderr)
    _report_skipped(prepared.skipped)
    print(prepared.path)
    if len(prepared.skipped):
        print(f"gpwave: {len(prepared.skipped)} file(s) skipped", file=sys.stderr)
    return 1 if len(prepared.skipped) else 0


def _cmd_data_info(args: argparse.Namespace) -> int:
    from gpwave import data

    table = data.summarize(args.data_dir)
    if args.json:
        _print_json(table.to_dict(orient="records"))
    else:
        print(table.to_string(index=False))
    return 0


# --- gpwave train / evaluate / detect ----------------------------------------------------
def _cmd_train(args: argparse.Namespace) -> int:
    from gpwave import train
    from gpwave.config import parse_assignments

    overrides = parse_assignments(args.set)
    if args.dry_run:
        import yaml

        for name, cfg in train.read_config(args.config, overrides):
            print(yaml.safe_dump({"run": str(args.out / name), **cfg.to_dict()}, sort_keys=False))
        return 0
    results = train.run_config(
        args.config, out=args.out, resume=args.resume, overrides=overrides,
        overwrite=args.overwrite,
    )  # fmt: skip
    for res in results:
        _print_json(res, indent=None)
    return 0


def _detector_source(args: argparse.Namespace, rest: list) -> tuple[object, list]:
    """A checkpoint path or a named model (``--model``), and the other positionals.

    With ``--model`` every positional is an input; without it the first is the checkpoint.
    """
    from gpwave.errors import CheckpointError

    given = [r for r in rest if r is not None]
    if args.model is None:
        if len(given) < 2:
            raise CheckpointError("give a checkpoint path or --model NAME (see gpwave models)")
        return given[0], given[1:]
    from gpwave import hub

    return hub.resolve(args.model), given


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from gpwave import evaluate, hub
    from gpwave.config import resolve_device
    from gpwave.errors import CheckpointError

    source, rest = _detector_source(args, [args.checkpoint, args.data_dir])
    if len(rest) != 1:
        raise CheckpointError("evaluate takes one DATA_DIR (and a checkpoint or --model)")
    device = resolve_device(args.device)
    det = hub.resolve(source, device)
    store = _evaluation_store(det, rest[0])
    table = evaluate.evaluate_checkpoint(
        det, rest[0], store_dir=store.path, n_boot=args.n_boot, device=device
    )
    if args.json:
        _print_json(table.to_dict(orient="records"))
    else:
        from gpwave.report import to_markdown

        print(to_markdown(table))
    _report_skipped(store.skipped)
    if len(store.skipped):
        print(f"gpwave: {len(store.skipped)} file(s) skipped", file=sys.stderr)
    return 1 if len(store.skipped) else 0


def _evaluation_store(det: Any, data_dir: Path) -> Any:
    """The frame store ``evaluate_checkpoint`` scores, checked for real and fake frames.

    Raises:
        DataError: No real frame (no ``A_`` folder, or every file of it bad) or no fake
            frame; the message lists the skipped files.
    """
    from gpwave.data import DataConfig
    from gpwave.errors import DataError
    from gpwave.store import prepare_store

    rate = det.feature_config.sample_rate
    cfg = DataConfig(root=data_dir, sample_rate=rate, seconds=det.n_samples / rate)
    store = prepare_store(cfg)
    for label, what in ((0, "real (A_ folder)"), (1, "fake (generator folder)")):
        if not (store.index["label"] == label).any():
            _report_skipped(store.skipped)
            raise DataError(
                f"{data_dir}: no usable {what} frame to compare"
                + (f"; {len(store.skipped)} file(s) skipped" if len(store.skipped) else "")
            )
    return store


def _cmd_detect(args: argparse.Namespace) -> int:
    from gpwave import detect

    source, files = _detector_source(args, [args.checkpoint, *args.files])
    reports = detect.detect_files(source, files, threshold=args.threshold, device=args.device)
    if args.json:
        _print_json([r.to_dict() for r in reports])
    else:
        for r in reports:
            print(r)
    for r in reports:
        if r.warning:
            print(f"gpwave: warning: {r.warning}", file=sys.stderr)
        if not r.error and r.verdict is None:
            print(f"gpwave: warning: {r.file}: {detect.NO_VERDICT}", file=sys.stderr)
    failed = [r for r in reports if r.error]
    if failed:
        print(f"gpwave: {len(failed)} of {len(reports)} files not scored", file=sys.stderr)
    return 1 if failed else 0


def _cmd_models(args: argparse.Namespace) -> int:
    from gpwave import hub

    table = hub.list_models()
    if args.json:
        _print_json(table.to_dict(orient="records"))
    else:
        print(table.drop(columns=["mean", "std"]).to_string(index=False))
    return 0


# --- gpwave fingerprint / book ----------------------------------------------------------
def _cmd_fingerprint(args: argparse.Namespace) -> int:
    from gpwave import plots

    out = plots.write_fingerprints(
        args.data_dir, out=args.out, wavelet=args.wavelet, level=args.level,
        max_frames=args.max_frames, device=args.device,
    )  # fmt: skip
    print(out)
    return 0


def _cmd_book(args: argparse.Namespace) -> int:
    from gpwave import book

    return book.build(quick=args.quick, results=args.results, force=args.force,
                      matrix=args.matrix, data=args.data, device=args.device)  # fmt: skip


# --- gpwave export ------------------------------------------------------------------------
def _cmd_export(args: argparse.Namespace) -> int:
    from gpwave import export

    path = export.export_detector(args.model, args.out)
    print(path)
    print(path.with_suffix(".json"))
    return 0


def _add_export(sub: Any) -> None:
    x = _parser(sub, "export", "write a named detector as one ONNX graph (frame -> log-odds)")
    x.add_argument("--model", required=True, help="paper-sym5, paper-stft or a published model")
    x.add_argument("--out", type=Path, required=True, help="folder for NAME.onnx and NAME.json")
    x.set_defaults(func=_cmd_export)


_MODEL_HELP = "a named detector instead of a checkpoint, e.g. paper-sym5 (gpwave models lists them)"


def _parser(sub: Any, name: str, text: str) -> argparse.ArgumentParser:
    return sub.add_parser(
        name, help=text, description=text, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )


def _add_data(sub: Any) -> None:
    d = _parser(sub, "data", "fetch, arrange, prepare and describe data sets")
    dsub = d.add_subparsers(
        dest="data_command", required=True, metavar="COMMAND", help="what to do"
    )
    f = _parser(dsub, "fetch", "download a data set by its manifest, verifying checksums")
    f.add_argument("name", choices=get_args(DatasetName), help="which data set")
    f.add_argument("--dest", type=Path, default=None, help="target folder; None: $GPWAVE_DATA")
    f.add_argument(
        "--mirror", default=None, help="folder or URL replacing upstream URLs; None: upstream"
    )
    f.set_defaults(func=_cmd_data_fetch)
    a = _parser(dsub, "arrange", "lay out WaveFake+LJSpeech as letter-prefixed folders")
    a.add_argument("--wavefake", type=Path, required=True, help="unpacked WaveFake folder")
    a.add_argument("--ljspeech", type=Path, required=True, help="unpacked LJSpeech-1.1 folder")
    a.add_argument("--extension", type=Path, default=None, help="extension set folder, if any")
    a.add_argument("--out", type=Path, required=True, help="where the lettered folders go")
    a.set_defaults(func=_cmd_data_arrange)
    pr = _parser(dsub, "prepare", "decode a folder tree once into a frame store")
    pr.add_argument("data_dir", type=Path, help="root of letter-prefixed folders")
    pr.add_argument(
        "--store", type=Path, default=None, help="store folder; None: under $GPWAVE_DATA/stores"
    )
    pr.add_argument(
        "--sample-rate", type=_int_at_least(1000, 384000), default=SAMPLE_RATE,
        help="target rate in Hz",
    )  # fmt: skip
    pr.add_argument(
        "--seconds", type=_positive_seconds, default=1.0, help="frame length in seconds"
    )
    pr.add_argument("--dtype", choices=get_args(StoreDtype), default="int16", help="sample format")
    pr.add_argument("--seed", type=int, default=0, help="seed of the utterance split")
    pr.add_argument(
        "--only-use", nargs="+", default=None, help="generator or folder names; None: all"
    )
    pr.add_argument("--only-test", nargs="+", default=None, help="test-only folders")
    pr.set_defaults(func=_cmd_data_prepare)
    i = _parser(dsub, "info", "folders, files, seconds and frames of a data tree")
    i.add_argument("data_dir", type=Path, help="root of letter-prefixed folders")
    i.add_argument("--json", action="store_true", help="print JSON records instead of a table")
    i.set_defaults(func=_cmd_data_info)


def _add_models(sub: Any) -> None:
    t = _parser(sub, "train", "train detectors from a YAML config (grid over lists)")
    t.add_argument("config", type=Path, help="training config, e.g. configs/mini.yaml")
    t.add_argument("--out", type=Path, required=True, help="run folder (locked while training)")
    t.add_argument(
        "--resume",
        action="store_true",
        help="continue from the last checkpoints; only resumable settings may change "
        "(epochs, lr, weight_decay, device, ...)",
    )
    t.add_argument(
        "--overwrite",
        action="store_true",
        help="train afresh over the runs already in --out (their files are replaced), "
        "and replace a published model of the same name",
    )
    t.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a config key; VALUE is YAML (2, 4e-4, [0, 1], null); a.b sets nested keys",
    )
    t.add_argument(
        "--dry-run",
        action="store_true",
        help="validate the config and print every run's full settings; train nothing",
    )
    t.set_defaults(func=_cmd_train)

    e = _parser(sub, "evaluate", "per-folder EER/accuracy table of a checkpoint or named model")
    e.add_argument(
        "checkpoint",
        type=Path,
        nargs="?",
        help="best.pt or last.pt of gpwave train; omit with --model",
    )
    e.add_argument(
        "data_dir", type=Path, nargs="?", help="root of letter-prefixed folders to score"
    )
    e.add_argument("--model", default=None, help=_MODEL_HELP)
    e.add_argument(
        "--n-boot", type=_int_at_least(0, 10**6), default=N_BOOT,
        help="bootstrap resamples of the CIs (0: none)",
    )  # fmt: skip
    e.add_argument(
        "--device", type=_device, default=None, help="cpu, cuda or cuda:N; None: cuda if present"
    )
    e.add_argument("--json", action="store_true", help="print JSON records instead of Markdown")
    e.set_defaults(func=_cmd_evaluate)

    dt = _parser(sub, "detect", "per-second fake scores and a verdict per file")
    dt.add_argument(
        "checkpoint", type=Path, help="best.pt or last.pt of gpwave train; with --model a file"
    )
    dt.add_argument("files", type=Path, nargs="*", help="audio files (any rate >= the model's)")
    dt.add_argument("--model", default=None, help=_MODEL_HELP)
    dt.add_argument(
        "--threshold", type=_probability, default=0.5,
        help="fake if the mean score of the windows with speech energy >= this (in [0, 1])",
    )  # fmt: skip
    dt.add_argument(
        "--device", type=_device, default=None, help="cpu, cuda or cuda:N; None: cuda if present"
    )
    dt.add_argument("--json", action="store_true", help="print JSON reports instead of text")
    dt.set_defaults(func=_cmd_detect)

    m = _parser(sub, "models", "the named detectors (--model) and their provenance")
    m.add_argument("--json", action="store_true", help="print JSON records instead of a table")
    m.set_defaults(func=_cmd_models)


def _add_outputs(sub: Any) -> None:
    fp = _parser(sub, "fingerprint", "mean packet spectra, plots and audible fingerprints")
    fp.add_argument("data_dir", type=Path, help="root of letter-prefixed folders")
    fp.add_argument("--out", type=Path, required=True, help="folder for spectra, plots, audio")
    fp.add_argument(
        "--wavelet", type=_wavelet, default="haar", help="wavelet of the packet transform"
    )
    fp.add_argument(
        "--level", type=_int_at_least(1, MAX_LEVEL), default=14,
        help=f"packet level (2**level bands), 1..{MAX_LEVEL}",
    )  # fmt: skip
    fp.add_argument(
        "--max-frames", type=_int_at_least(1), default=None, help="frames per folder; None: all"
    )
    fp.add_argument(
        "--device", type=_device, default=None, help="cpu, cuda or cuda:N; None: cuda if present"
    )
    fp.set_defaults(func=_cmd_fingerprint)

    b = _parser(sub, "book", "execute the notebooks with papermill and build the book")
    b.add_argument("--quick", action="store_true", help="few frames and epochs (CI)")
    b.add_argument("--results", type=Path, default=Path("results"), help="results folder")
    b.add_argument("--force", action="store_true", help="re-execute even if inputs are unchanged")
    b.add_argument(
        "--matrix", type=Path, default=Path("configs/book.yaml"),
        help="run matrix: configs/book.yaml (mini benchmark, CPU) or configs/book-wavefake.yaml "
        "(the paper's grid on full WaveFake, a GPU node); results go to RESULTS/<its name>",
    )  # fmt: skip
    b.add_argument("--data", type=Path, default=None,
                   help="data tree (default: $GPWAVE_DATA/<the matrix's data>)")  # fmt: skip
    b.add_argument(
        "--device",
        type=_device,
        default=None,
        help="where the notebooks run models: cpu, cuda, cuda:N (None: auto)",
    )
    b.set_defaults(func=_cmd_book)


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the ``gpwave`` command.

    Every argument has a help text; defaults are shown by
    :class:`argparse.ArgumentDefaultsHelpFormatter`.

    Returns:
        The parser; ``args.func(args)`` runs the chosen sub-command.
    """
    p = argparse.ArgumentParser(
        prog="gpwave",
        description="gpwave: wavelet-packet fingerprints and deep-fake audio detectors",
        epilog="exit status: 0 all done, 1 some inputs failed, 2 usage error or bad input",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", help="what to do")
    _add_data(sub)
    _add_models(sub)
    _add_outputs(sub)
    _add_export(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``gpwave`` command.

    Args:
        argv: Arguments without the program name (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 all done, 1 some inputs failed, 2 a reported error.
    """
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except GpwaveError as err:
        print(f"gpwave: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        if err.errno not in _DISK_FULL:
            raise
        where = f"{err.filename}: " if err.filename else ""
        print(
            f"gpwave: error: {where}{err.strerror or 'no space left on device'}; free some "
            "space and run again (what was finished is kept)",
            file=sys.stderr,
        )
        return 2


#: errno values of a full disk or an exhausted quota: reported in one line, exit 2.
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


if __name__ == "__main__":
    sys.exit(main())
