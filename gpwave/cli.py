"""The ``gpwave`` command line: ``gpwave data|train|evaluate|detect|models|fingerprint|book``.

Each sub-command is a thin wrapper over one module's public function; errors derived
from :class:`gpwave.errors.GpwaveError` are printed as one line without a traceback
and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from gpwave.errors import GpwaveError


def _print_json(obj: object) -> None:
    json.dump(obj, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


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

    overrides = dict(kv.split("=", 1) for kv in args.set or [])
    results = train.run_config(args.config, out=args.out, resume=args.resume, overrides=overrides)
    for res in results:
        print(json.dumps(res, default=str))
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
    from gpwave.pretrained import paper_detector

    try:
        return paper_detector(args.model), given
    except ValueError as err:  # an unknown name
        raise CheckpointError(f"--model: {err}") from err


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from gpwave import evaluate
    from gpwave.errors import CheckpointError

    source, rest = _detector_source(args, [args.checkpoint, args.data_dir])
    if len(rest) != 1:
        raise CheckpointError("evaluate takes one DATA_DIR (and a checkpoint or --model)")
    table = evaluate.evaluate_checkpoint(source, rest[0])
    if args.json:
        _print_json(json.loads(table.to_json(orient="records")))  # NaN -> null
    else:
        print(evaluate.to_markdown(table))
    return 0


def _cmd_detect(args: argparse.Namespace) -> int:
    from gpwave import evaluate

    source, files = _detector_source(args, [args.checkpoint, *args.files])
    reports = evaluate.detect_files(source, files, threshold=args.threshold)
    if args.json:
        _print_json([r.to_dict() for r in reports])
    else:
        for r in reports:
            print(r)
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from gpwave import pretrained

    table = pretrained.list_models()
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


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the ``gpwave`` command.

    Returns:
        The parser; ``args.func(args)`` runs the chosen sub-command.
    """
    p = argparse.ArgumentParser(prog="gpwave", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("data", help="fetch, arrange, prepare and describe data sets")
    dsub = d.add_subparsers(dest="data_command", required=True)
    f = dsub.add_parser("fetch", help="download a data set by its manifest, verifying checksums")
    f.add_argument("name", choices=["mini", "wavefake", "ljspeech", "extension", "models"])
    f.add_argument("--dest", type=Path, default=None, help="target folder (default: $GPWAVE_DATA)")
    f.add_argument("--mirror", default=None, help="folder or URL replacing upstream URLs")
    f.set_defaults(func=_cmd_data_fetch)
    a = dsub.add_parser("arrange", help="lay out WaveFake+LJSpeech as letter-prefixed folders")
    a.add_argument("--wavefake", type=Path, required=True)
    a.add_argument("--ljspeech", type=Path, required=True)
    a.add_argument("--extension", type=Path, default=None)
    a.add_argument("--out", type=Path, required=True)
    a.set_defaults(func=_cmd_data_arrange)
    pr = dsub.add_parser("prepare", help="decode a folder tree once into a frame store")
    pr.add_argument("data_dir", type=Path)
    pr.add_argument("--store", type=Path, default=None)
    pr.add_argument("--sample-rate", type=int, default=22050)
    pr.add_argument("--seconds", type=float, default=1.0)
    pr.add_argument("--dtype", choices=["int16", "float16"], default="int16")
    pr.add_argument("--seed", type=int, default=0, help="seed of the utterance split")
    pr.add_argument("--only-use", nargs="+", default=None, help="generator or folder names")
    pr.add_argument("--only-test", nargs="+", default=None, help="test-only folders")
    pr.set_defaults(func=_cmd_data_prepare)
    i = dsub.add_parser("info", help="folders, files, seconds and frames of a data tree")
    i.add_argument("data_dir", type=Path)
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=_cmd_data_info)

    t = sub.add_parser("train", help="train detectors from a YAML config (grid over lists)")
    t.add_argument("config", type=Path)
    t.add_argument("--out", type=Path, required=True)
    t.add_argument("--resume", action="store_true", help="continue from the last checkpoints")
    t.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key")
    t.set_defaults(func=_cmd_train)

    e = sub.add_parser("evaluate", help="per-folder EER/accuracy table of a checkpoint")
    e.add_argument("checkpoint", type=Path, nargs="?", help="omit with --model")
    e.add_argument("data_dir", type=Path, nargs="?")
    e.add_argument("--model", default=None, help="a named model instead of a checkpoint")
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=_cmd_evaluate)

    dt = sub.add_parser("detect", help="per-second fake scores and a verdict per file")
    dt.add_argument("checkpoint", type=Path, help="omit with --model")
    dt.add_argument("files", type=Path, nargs="*")
    dt.add_argument("--model", default=None, help="a named model instead of a checkpoint")
    dt.add_argument("--threshold", type=float, default=0.5)
    dt.add_argument("--json", action="store_true")
    dt.set_defaults(func=_cmd_detect)

    m = sub.add_parser("models", help="the named detectors (--model) and their provenance")
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=_cmd_models)

    fp = sub.add_parser("fingerprint", help="mean packet spectra, plots and audible fingerprints")
    fp.add_argument("data_dir", type=Path)
    fp.add_argument("--out", type=Path, required=True)
    fp.add_argument("--wavelet", default="haar")
    fp.add_argument("--level", type=int, default=14)
    fp.add_argument("--max-frames", type=int, default=None, help="frames per folder (all)")
    fp.add_argument("--device", default=None, help="cpu or cuda (default: cuda if present)")
    fp.set_defaults(func=_cmd_fingerprint)

    b = sub.add_parser("book", help="execute the notebooks with papermill and build the book")
    b.add_argument("--quick", action="store_true", help="few frames and epochs (CI)")
    b.add_argument("--results", type=Path, default=Path("results"))
    b.add_argument("--force", action="store_true", help="re-execute even if inputs are unchanged")
    b.set_defaults(func=_cmd_book)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``gpwave`` command.

    Args:
        argv: Arguments without the program name (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 on success, 2 on a reported error.
    """
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except GpwaveError as err:
        print(f"gpwave: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
