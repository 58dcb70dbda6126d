"""``archgen auto``: write an archgen config planned from a dataset, as nnU-Net plans it.

Wiring (archgen/cli.py)::

    from archgen.auto.cli import add_auto_arguments, cmd_auto
    p = sub.add_parser("auto", help="plan a network from a dataset's shape and spacing (nnU-Net's rules)")
    add_auto_arguments(p)
    ...  # dispatch: return cmd_auto(args)

``cmd_auto`` raises :class:`archgen.errors.SpecError` (exit 2 in ``archgen.cli.main``) on bad input;
``python -m archgen.auto.cli`` runs it on its own with the same exit codes.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
from pathlib import Path
from typing import Sequence

from archgen.errors import ArchgenError, SpecError, printable

CONFIGURATIONS = ("2d", "3d_fullres", "3d_lowres")


def add_auto_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_argument_group("the dataset (nnU-Net's files, or its median figures)")
    src.add_argument("--fingerprint", metavar="JSON", help="nnU-Net's dataset_fingerprint.json")
    src.add_argument("--dataset", metavar="JSON", help="nnU-Net's dataset.json (channels, labels, numTraining)")
    src.add_argument("--shape", metavar="D,H,W", help="median image shape in voxels (2 values: a 2D dataset)")
    src.add_argument("--spacing", metavar="D,H,W", help="voxel spacing in mm, same axes as --shape")
    src.add_argument("--channels", type=int, help="input channels (default: dataset.json, else 1)")
    src.add_argument("--classes", type=int,
                     help="labels including the background, nnU-Net's len(labels) (default: dataset.json)")
    src.add_argument("--cases", type=int, help="training cases, for the batch-size cap (default: dataset.json "
                                               "numTraining, the fingerprint's count, or 100 with --shape)")
    parser.add_argument("--family", choices=["plain", "resenc_m", "resenc_l", "resenc_xl"], default="plain",
                        help="nnU-Net's planner: ExperimentPlanner (plain) or nnUNetPlannerResEnc{M,L,XL}")
    parser.add_argument("--fit", metavar="BYTES",
                        help="GPU memory target, e.g. 8GB or 8GiB (archgen's budget in bytes; with --memory "
                             "nnunet, gpu_memory_target_in_gb = bytes / 1e9); "
                             "default: the family's own (8GB; resenc_l 24GB; resenc_xl 40GB)")
    parser.add_argument("--memory", choices=["archgen", "nnunet"], default="archgen",
                        help="memory model that sizes patch and batch: archgen (default) = archgen's training "
                             "estimate of the planned network (by the memory profile of --backend on --device) against --fit "
                             "in bytes; nnunet = nnU-Net's feature-map estimate against its reference values "
                             "(nnU-Net's decisions exactly; --fit 8GB is gpu_memory_target_in_gb=8)")
    parser.add_argument("--backend", metavar="tensorflow|jax|torch",
                        help="Keras back end the network will train on: its memory profile sizes patch and batch "
                             "with --memory archgen (default: $KERAS_BACKEND, else tensorflow)")
    parser.add_argument("--device", metavar="cpu|gpu",
                        help="device it will train on, whose memory profile --memory archgen uses (default gpu)")
    parser.add_argument("--configuration", choices=CONFIGURATIONS,
                        help="which configuration to write (default: 3d_fullres, or 2d for a 2D dataset)")
    parser.add_argument("--name", help="model name in the config (default: auto_<configuration>)")
    parser.add_argument("-o", "--output", metavar="FILE", help="write the config here (default: stdout)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing --output")
    parser.add_argument("--json", action="store_true",
                        help='print {"configurations": {...}} with nnU-Net\'s keys and axis order instead')


def _dataset(args: argparse.Namespace):
    from archgen.auto.inputs import from_figures, from_files

    if args.fingerprint is not None:
        if args.shape is not None or args.spacing is not None:
            raise SpecError("give either --fingerprint or --shape/--spacing, not both", path="--shape",
                            value=args.shape if args.shape is not None else args.spacing)
        return from_files(args.fingerprint, args.dataset, args.channels, args.classes, args.cases)
    if args.dataset is not None:
        raise SpecError("needs --fingerprint (dataset.json has no shapes or spacings)", path="--dataset",
                        value=args.dataset)
    if args.shape is None or args.spacing is None:
        missing = "--shape" if args.shape is None else "--spacing"
        raise SpecError("is required without --fingerprint (e.g. --shape 128,128,128 --spacing 1,1,1)",
                        path=missing)
    if args.classes is None:
        raise SpecError("is required with --shape: the number of labels including the background",
                        path="--classes")
    return from_figures(args.shape, args.spacing, args.channels if args.channels is not None else 1,
                        args.classes, args.cases)


def _profile(args: argparse.Namespace):
    """The memory profile of ``--backend`` on ``--device`` (default: the GPU's); None with ``--memory nnunet``,
    which has no use for one."""
    from archgen.auto.calibration import DEVICE
    from archgen.planner.profiles import memory_profile

    if args.memory == "nnunet":
        for option, value in (("--backend", args.backend), ("--device", args.device)):
            if value is not None:
                raise SpecError("chooses the memory profile of --memory archgen; --memory nnunet sizes the patch "
                                "by nnU-Net's reference values", path=option, value=value)
        return None
    return memory_profile(args.backend, args.device or DEVICE)


NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")  # the schema's rule for a model name


def run(args: argparse.Namespace, argv: Sequence[str] | None = None) -> tuple[dict, str | None]:
    """(nnU-Net-keyed decisions, YAML text or None with --json)."""
    from archgen.auto.config import render
    from archgen.auto.inputs import parse_gb
    from archgen.auto.nnunet import FAMILIES, plan_dataset

    if args.name is not None and not NAME.fullmatch(args.name):
        raise SpecError("expected a letter, then up to 63 letters, digits or _ (the config's name)", path="--name",
                        value=args.name)
    family = FAMILIES[args.family]
    gb = parse_gb(args.fit) if args.fit is not None else family.default_gb
    profile = _profile(args)
    dataset = _dataset(args)
    result = plan_dataset(dataset, family, gb, args.memory, profile)
    configs = result["configurations"]
    conf = args.configuration or default_configuration(result)
    if conf in result["_not_made"]:
        exc = result["_not_made"][conf]
        if exc.path == "--fit" and args.fit is not None:  # the budget as typed, not as nnU-Net's GB
            raise SpecError(exc.message, path="--fit", value=args.fit, hint=exc.hint) from None
        raise exc
    if conf not in configs:
        raise SpecError(f"was not made: {why_not_made(result, conf)}; made: {', '.join(configs) or 'none'}",
                        path="--configuration", value=conf)
    if args.json:
        return result, None
    command = "archgen auto " + " ".join(shlex.quote(a) for a in (argv or []))
    return result, render(result, conf, dataset, args.name or f"auto_{conf}", command.strip())


def default_configuration(result: dict) -> str:
    """3d_fullres for a 3D dataset (made or not: a 2D plan is not what a 3D dataset asked for), else 2d."""
    return "2d" if result["median_shape_after_resampling"][0] == 1 else "3d_fullres"


def why_not_made(result: dict, name: str) -> str:
    """Why configuration ``name`` is missing from ``result``, in one line."""
    exc = result["_not_made"].get(name)
    if exc is not None:
        return f"{exc.path}: {exc.message}" + (f" ({exc.hint})" if exc.hint else "")
    return "the dataset is 2D" if default_configuration(result) == "2d" else result["_why_no_3d_lowres"]


def public(result: dict) -> dict:
    """The JSON answer: nnU-Net's keys per configuration, archgen's reasons under ``archgen``, and
    why each configuration that is missing was not made."""
    out = {k: v for k, v in result.items() if k != "configurations" and not k.startswith("_")}
    out["configurations"] = {}
    for name, conf in result["configurations"].items():
        conf = dict(conf)
        out["configurations"][name] = {**{k: v for k, v in conf.items() if k != "_why"}, "archgen": conf["_why"]}
    made = result["configurations"]
    out["not_made"] = {name: why_not_made(result, name) for name in CONFIGURATIONS if name not in made}
    return out


def cmd_auto(args: argparse.Namespace) -> int:
    from archgen.output import check_target, write_atomic

    argv = getattr(args, "_argv", None)
    if args.output:  # refused before any work, as every command's output is
        check_target(Path(args.output), force=args.force, suffix=".yaml",
                     inputs={"fingerprint": args.fingerprint, "dataset file": args.dataset})
    result, text = run(args, argv)
    if text is None:
        print(json.dumps(public(result), indent=2))
        return 0
    if args.output:
        path = Path(args.output)
        try:
            write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), suffix=".yaml", force=args.force)
        except OSError as exc:
            raise ArchgenError(f"cannot be written: {exc.strerror or exc}", path="--output", value=str(path)) from None
        conf = args.configuration or default_configuration(result)
        c = result["configurations"][conf]
        why = c["_why"]
        memory = (f"memory model archgen, profile {why['memory_profile']}: {why['memory_estimate_bytes'] / 2**30:.2f} GiB of "
                  f"{why['memory_budget_bytes'] / 2**30:.2f} GiB" if why["memory_model"] == "archgen"
                  else "memory model nnunet")
        print(f"{printable(str(path), 10_000)}: {conf}, patch {c['patch_size']}, batch {c['batch_size']}, "
              f"{c['n_stages']} stages, features {c['features_per_stage']} ({memory})")
    else:
        sys.stdout.write(text)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m archgen.auto.cli ...``: the command without archgen's CLI (exit 2 on bad input)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="archgen auto", description=__doc__.splitlines()[0])
    add_auto_arguments(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    args._argv = argv
    try:
        return cmd_auto(args)
    except ArchgenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
