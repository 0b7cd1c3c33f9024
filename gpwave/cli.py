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
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, get_args

from gpwave import __version__
from gpwave.constants import N_BOOT, SAMPLE_RATE, DatasetName, StoreDtype
from gpwave.errors import GpwaveError


def _print_json(obj: object, indent: int | None = 2) -> None:
    from gpwave.evaluate import to_json

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
    from gpwave import data

    cfg = data.DataConfig(
        root=args.data_dir,
        sample_rate=args.sample_rate,
        seconds=args.seconds,
        only_use=args.only_use,
        only_test_folders=args.only_test or (),
        seed=args.seed,
        dtype=args.dtype,
    )
    store = data.prepare_store(cfg, store_dir=args.store)
    counts = store.index.groupby(["folder", "split"]).size().unstack(fill_value=0)
    print(counts.to_string(), file=sys.stderr)
    if len(store.skipped):
        print(store.skipped.to_string(index=False), file=sys.stderr)
    print(store.path)
    return 0


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
    from gpwave import evaluate
    from gpwave.errors import CheckpointError

    source, rest = _detector_source(args, [args.checkpoint, args.data_dir])
    if len(rest) != 1:
        raise CheckpointError("evaluate takes one DATA_DIR (and a checkpoint or --model)")
    table = evaluate.evaluate_checkpoint(source, rest[0], n_boot=args.n_boot, device=args.device)
    if args.json:
        _print_json(table.to_dict(orient="records"))
    else:
        print(evaluate.to_markdown(table))
    return 0


def _cmd_detect(args: argparse.Namespace) -> int:
    from gpwave import evaluate

    source, files = _detector_source(args, [args.checkpoint, *args.files])
    reports = evaluate.detect_files(source, files, threshold=args.threshold, device=args.device)
    if args.json:
        _print_json([r.to_dict() for r in reports])
    else:
        for r in reports:
            print(r)
    for r in reports:
        if r.warning:
            print(f"gpwave: warning: {r.warning}", file=sys.stderr)
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
    from gpwave import fingerprints

    out = fingerprints.write_fingerprints(
        args.data_dir, out=args.out, wavelet=args.wavelet, level=args.level,
        max_frames=args.max_frames, device=args.device,
    )  # fmt: skip
    print(out)
    return 0


def _cmd_book(args: argparse.Namespace) -> int:
    from gpwave import book

    return book.build(quick=args.quick, results=args.results, force=args.force)


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
    pr.add_argument("--sample-rate", type=int, default=SAMPLE_RATE, help="target rate in Hz")
    pr.add_argument("--seconds", type=float, default=1.0, help="frame length in seconds")
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
    e.add_argument("--n-boot", type=int, default=N_BOOT, help="bootstrap resamples of the CIs")
    e.add_argument("--device", default=None, help="cpu, cuda or cuda:N; None: cuda if present")
    e.add_argument("--json", action="store_true", help="print JSON records instead of Markdown")
    e.set_defaults(func=_cmd_evaluate)

    dt = _parser(sub, "detect", "per-second fake scores and a verdict per file")
    dt.add_argument(
        "checkpoint", type=Path, help="best.pt or last.pt of gpwave train; with --model a file"
    )
    dt.add_argument("files", type=Path, nargs="*", help="audio files (any rate >= the model's)")
    dt.add_argument("--model", default=None, help=_MODEL_HELP)
    dt.add_argument("--threshold", type=float, default=0.5, help="fake if the mean score >= this")
    dt.add_argument("--device", default=None, help="cpu, cuda or cuda:N; None: cuda if present")
    dt.add_argument("--json", action="store_true", help="print JSON reports instead of text")
    dt.set_defaults(func=_cmd_detect)

    m = _parser(sub, "models", "the named detectors (--model) and their provenance")
    m.add_argument("--json", action="store_true", help="print JSON records instead of a table")
    m.set_defaults(func=_cmd_models)


def _add_outputs(sub: Any) -> None:
    fp = _parser(sub, "fingerprint", "mean packet spectra, plots and audible fingerprints")
    fp.add_argument("data_dir", type=Path, help="root of letter-prefixed folders")
    fp.add_argument("--out", type=Path, required=True, help="folder for spectra, plots, audio")
    fp.add_argument("--wavelet", default="haar", help="wavelet of the packet transform")
    fp.add_argument("--level", type=int, default=14, help="packet level (2**level bands)")
    fp.add_argument("--max-frames", type=int, default=None, help="frames per folder; None: all")
    fp.add_argument("--device", default=None, help="cpu, cuda or cuda:N; None: cuda if present")
    fp.set_defaults(func=_cmd_fingerprint)

    b = _parser(sub, "book", "execute the notebooks with papermill and build the book")
    b.add_argument("--quick", action="store_true", help="few frames and epochs (CI)")
    b.add_argument("--results", type=Path, default=Path("results"), help="results folder")
    b.add_argument("--force", action="store_true", help="re-execute even if inputs are unchanged")
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


if __name__ == "__main__":
    sys.exit(main())
