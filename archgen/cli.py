"""``archgen`` command line: parse, call the library, print. Exit 0 ok, 2 bad input, 1 internal error.

Everything after the config path that is not an option is a Hydra override
(``key=value``, ``+key=value``, ``~key``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Sequence

from archgen.errors import ArchgenError, printable
from archgen.planner.guard import DEFAULT_MAX_PARAMS, DEFAULT_MAX_VARIANTS
from archgen.termination import Terminated, check, on_sigterm

COMMANDS = {
    "build": "plan the model, build it with Keras and save it as .keras",
    "summary": "print the planned model (no TensorFlow import)",
    "diagram": "draw the planned model as a U-shaped SVG (or Graphviz DOT)",
    "validate": "check a config and its overrides; exit 0 or 2",
    "schema": "print the JSON Schema of the config format",
    "predict": "predict an image of any size tile by tile (overlap-tile) with a built model",
    "auto": "derive a network from a dataset's shape and spacing as nnU-Net's planner does; write its config",
    "train": "train the network on a folder of images and masks (-m: train every variant, rank by validation Dice)",
}


class UsageError(ArchgenError):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse exits 2 too, but with its own wording
        raise UsageError(f"{message}\n{self.format_usage().strip()}")


def _parser(command: str) -> argparse.ArgumentParser:
    p = _Parser(prog=f"archgen {command}", description=COMMANDS[command])
    if command == "schema":
        p.add_argument("--json", action="store_true", help="accepted for symmetry: the schema is JSON already")
        return p
    if command == "predict":
        from archgen.predict_cli import add_predict_arguments

        add_predict_arguments(p)
        return p
    if command == "auto":
        from archgen.auto.cli import add_auto_arguments

        add_auto_arguments(p)
        return p
    if command == "train":
        from archgen.train.cli import add_train_arguments

        add_train_arguments(p, _count_arg, DEFAULT_MAX_VARIANTS)
        return p
    p.add_argument("config", help="the YAML file (ending in .yaml)")
    p.add_argument("overrides", nargs="*", default=[], help="Hydra overrides: key=value, +key=value, ~key")
    if command in ("summary", "build", "validate", "diagram"):
        p.add_argument("--json", action="store_true", help="print one JSON object instead of tables and text")
    if command in ("summary", "build"):
        p.add_argument("-m", "--multirun", action="store_true",
                       help="sweep: one job per variant of the overrides (Hydra's sweep grammar), one results table")
        p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or lines during a sweep")
        p.add_argument("--wide", action="store_true",
                       help="tables with every column and exact numbers, however wide the terminal")
        p.add_argument("--max-variants", type=_count_arg("--max-variants"), default=DEFAULT_MAX_VARIANTS,
                       help=f"refuse a sweep of more variants (default {DEFAULT_MAX_VARIANTS:,})")
    if command == "summary":
        p.add_argument("--force", action="store_true", help="sweep into a folder that already holds files")
        p.add_argument("--job-files", action="store_true",
                       help="with -m: also a folder per variant (plan.json, .hydra/); by default a plan-only "
                            "sweep writes only results.csv and results.json")
        p.add_argument("--sizes", type=_count_arg("--sizes", MAX_SIZES), nargs="?", const=10, metavar="N",
                       help="list the first N legal input sizes (default 10) and their output sizes")
        p.add_argument("--resolved", action="store_true",
                       help="print the config in its canonical stage-by-stage form (YAML that builds the same model)")
        p.add_argument("--batch", type=_count_arg("--batch", 10**6), default=1, help="batch size for FLOPs and memory (default 1)")
        p.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default="float32",
                       help="compute dtype of activations (weights stay float32)")
        p.add_argument("--optimizer", choices=("adam", "momentum", "sgd"), default="adam",
                       help="optimizer whose state the training estimate counts (default adam)")
        p.add_argument("--fit", metavar="BYTES", help="memory budget, e.g. 24GiB: the largest training batch "
                       "at this size, and the largest legal input at --batch, that fit")
        p.add_argument("--backend", metavar="tensorflow|jax|torch",
                       help="Keras back end whose memory profile the memory figures use (default: $KERAS_BACKEND, "
                            "else tensorflow)")
        p.add_argument("--device", metavar="cpu|gpu", default="cpu",
                       help="device whose memory profile the memory figures use (default cpu: the only device with "
                            "calibrated profiles so far)")
    if command == "diagram":
        p.add_argument("-o", "--output", type=Path, help="file to write (default: <name>.svg / .dot; - for stdout)")
        p.add_argument("--format", choices=("svg", "dot", "png"), default="svg",
                       help="svg (default), dot, or png (pip install 'archgen[png]')")
        p.add_argument("--force", action="store_true", help="overwrite an existing output file")
    if command == "build":
        p.add_argument("-o", "--output", type=Path,
                       help="where to write the model (default: <name>.keras; other formats use the same stem)")
        p.add_argument("--format", action="append", choices=("keras", "saved_model", "onnx", "litert"),
                       help="output format; repeat for several (default keras): .keras, <stem>_saved_model/, "
                            ".onnx, .tflite")
        p.add_argument("--force", action="store_true", help="overwrite an existing output file")
        p.add_argument("--keras-summary", action="store_true", help="also print Keras's model.summary()")
        p.add_argument("--backend", choices=("tensorflow", "jax", "torch"),
                       help="Keras back end (default: $KERAS_BACKEND, else tensorflow)")
        p.add_argument("--precision", choices=("float32", "mixed_bfloat16", "mixed_float16"), default="float32",
                       help="Keras dtype policy of the built model (mixed: 16-bit compute, float32 weights)")
        p.add_argument("--max-params", type=_limit_arg("--max-params"), default=DEFAULT_MAX_PARAMS,
                       help=f"refuse to build a model with more parameters (default {DEFAULT_MAX_PARAMS:.0e})")
        p.add_argument("--max-memory", metavar="BYTES", default=None,
                       help="refuse to build a model whose inference peak at batch 1 is larger (default 256GiB)")
    return p


MAX_SIZES = 10_000


def _count_arg(option: str, most: int = 10**9):
    """An argparse type: a whole number from 1 to ``most``, refused with the option's name."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise UsageError("expected a whole number", path=option, value=text) from None
        if not 1 <= value <= most:
            raise UsageError(f"must be between 1 and {most:,}", path=option, value=text)
        return value

    return parse


def _limit_arg(option: str):
    """An argparse type: a finite positive number (``nan`` and ``inf`` are refused)."""

    def parse(text: str) -> float:
        import math

        try:
            value = float(text)
        except ValueError:
            raise UsageError("expected a number", path=option, value=text) from None
        if not math.isfinite(value) or value <= 0:
            raise UsageError("must be a finite number above 0", path=option, value=text)
        return value

    return parse


def _top_usage() -> str:
    lines = ["usage: archgen COMMAND CONFIG [OVERRIDES...] [OPTIONS]", "", "commands:"]
    lines += [f"  {name:<9} {text}" for name, text in COMMANDS.items()]
    lines += ["", "archgen COMMAND --help for its options"]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_sigterm)
    try:
        code = _run(argv)
        check()  # a SIGTERM whose exception was dropped on the way still ends the command
        sys.stdout.flush()  # here, not at exit: a reader already gone (| true) is the BrokenPipeError below
        return code
    except ArchgenError as exc:
        print(f"error: {exc.render()}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print("error: terminated", file=sys.stderr)
        return 143
    except BrokenPipeError:  # the reader went away (| head): nothing more to say
        _quiet_stdout()
        return 0
    except MemoryError:
        print("error: out of memory: the input or the model is larger than this machine can hold", file=sys.stderr)
        return 2
    except RecursionError:
        print("error: model: the network is too deep for Keras to build (Python's recursion limit)",
              file=sys.stderr)
        return 2
    except Exception as exc:  # a bug of ours: one line, the traceback only on request
        if os.environ.get("ARCHGEN_DEBUG"):
            raise
        print(f"internal error: {type(exc).__name__}: {exc} (set ARCHGEN_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1


def _quiet_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _run(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(_top_usage())
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "--version":
        from archgen import __version__

        print(f"archgen {__version__}")
        return 0
    if command not in COMMANDS:
        from archgen.errors import did_you_mean

        raise UsageError(f"unknown command{did_you_mean(command, COMMANDS)}\n{_top_usage()}", path="command",
                         value=command)
    try:
        args = _parser(command).parse_intermixed_args(rest)
        args._argv = list(rest)  # recorded in the files `auto` writes
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    from archgen.config.sweep_value import SweepValueError

    try:
        return {"build": cmd_build, "summary": cmd_summary, "validate": cmd_validate, "schema": cmd_schema,
                "diagram": cmd_diagram, "predict": cmd_predict, "auto": cmd_auto,
                "train": cmd_train}[command](args)
    except SweepValueError as exc:  # "did you mean -m?" only where -m exists
        raise exc.for_command(command) from None


def _plan(args: argparse.Namespace):
    from archgen.planner import make_plan
    from archgen.config import load_spec

    spec = load_spec(args.config, args.overrides)
    _warn_unused(spec)
    return spec, make_plan(spec)


def _warn_unused(spec) -> None:
    """Keys the config sets that change nothing: on stderr, the exit code unchanged."""
    from archgen.errors import format_value
    from archgen.config.unused import unused_options

    for path, value, why in unused_options(spec):
        print(f"warning: {path}={printable(format_value(value))}: does nothing here; {why}", file=sys.stderr)


def _console(stderr: bool = False):
    from rich.console import Console

    console = Console(stderr=stderr, highlight=False, emoji=False)  # a name or path ":x:" is shown as typed
    if not console.is_terminal:  # piped: rich would wrap at 80 columns
        console.width = max(console.width, 120)
    return console


def _sweep(command: str, args: argparse.Namespace) -> int:
    from archgen.sweep import SweepOptions, run_sweep

    options = SweepOptions(quiet=args.quiet, force=args.force, max_variants=args.max_variants, json=args.json,
                           wide=args.wide, job_files=getattr(args, "job_files", False))
    if command == "build":
        if args.output is not None:
            raise UsageError("a sweep writes each variant's model into its job folder; choose the folder with "
                             "hydra.sweep.dir=... instead", path="--output", value=str(args.output))
        if args.keras_summary:
            raise UsageError("applies to single builds, not sweeps", path="--keras-summary")
        from archgen import export
        from archgen.backend import select_backend

        formats = list(dict.fromkeys(args.format or ["keras"]))
        export.check_formats(formats, args.backend)
        select_backend(args.backend)  # jobs in other processes inherit KERAS_BACKEND
        options.formats, options.precision, options.max_params = formats, args.precision, args.max_params
        options.max_memory = _max_memory(args)
    return run_sweep(command, args.config, args.overrides, options)


def _max_memory(args: argparse.Namespace) -> float:
    from archgen.planner.cost import parse_bytes
    from archgen.planner.guard import DEFAULT_MAX_MEMORY

    if args.max_memory is None:
        return DEFAULT_MAX_MEMORY
    return parse_bytes(args.max_memory, "--max-memory", unit_required=True)


def cmd_summary(args: argparse.Namespace) -> int:
    if args.multirun:
        return _sweep("summary", args)
    if args.resolved:
        from archgen.config import load_spec
        from archgen.config.resolve import resolved_yaml

        sys.stdout.write(resolved_yaml(load_spec(args.config, args.overrides)))
        return 0
    if args.sizes is not None:
        return _print_sizes(args)
    spec, plan = _plan(args)
    if args.batch < 1:
        raise UsageError("must be at least 1", path="--batch", value=args.batch)
    return _print_plan(args, spec, plan)


def _print_sizes(args: argparse.Namespace) -> int:
    """``summary --sizes``: the legal sizes, also (above all) when the file's own size is not one."""
    from archgen.errors import PlanError
    from archgen.planner import make_plan
    from archgen.config import load_spec

    spec = load_spec(args.config, args.overrides)
    try:
        plan = make_plan(spec)
    except PlanError as exc:
        # The rule does not depend on the size asked for: plan with the spatial sizes left open.
        shape = [None] * spec.ndim + [spec.input.shape[-1]]
        try:
            plan = make_plan(spec.model_copy(update={"input": spec.input.model_copy(update={"shape": shape})}))
        except PlanError:
            raise exc from None
    from archgen.report.data import legal_sizes

    if args.json:
        print(json.dumps({"command": "summary", **legal_sizes(plan, args.sizes)}, indent=2))
        return 0
    from archgen.report.summary import print_sizes

    print_sizes(plan, args.sizes, _console())
    return 0


def _print_plan(args: argparse.Namespace, spec, plan) -> int:
    from archgen.planner.cost import plan_cost
    from archgen.planner.profiles import memory_profile

    profile = memory_profile(args.backend, args.device)
    cost = plan_cost(plan, args.batch, args.dtype, args.optimizer, profile)
    fit = _fit(spec, plan, args, profile) if args.fit is not None else None
    if args.json:
        from archgen.report.data import plan_to_dict

        print(json.dumps({"command": "summary", **plan_to_dict(plan), "cost": cost.as_dict(),
                          "memory_profile": profile.as_dict(), **({"fit": fit} if fit else {})}, indent=2))
        return 0
    from archgen.report.summary import print_fit, print_summary

    console = _console()
    print_summary(plan, console, cost, wide=args.wide)
    if fit:
        print_fit(fit, console)
    return 0


def _fit(spec, plan, args: argparse.Namespace, profile) -> dict:
    from archgen.planner.cost import parse_bytes, training_bytes
    from archgen.planner.fit import max_batch, max_size

    budget = parse_bytes(args.fit, "--fit", unit_required=True)
    best = max_size(spec, budget, args.batch, args.dtype, args.optimizer, profile)
    dynamic = any(s is None for s in plan.input_shape)
    return {
        "budget_bytes": budget, "dtype": args.dtype, "optimizer": args.optimizer, "profile": profile.key,
        "max_batch": None if dynamic else max_batch(plan, budget, args.dtype, args.optimizer, profile),
        "at_input_shape": list(plan.input_shape),
        "batch": args.batch,
        "max_input_shape": None if best is None else list(best.input_shape),
        "max_input_training_bytes": None if best is None else training_bytes(best, args.batch, args.dtype,
                                                                           args.optimizer, profile),
    }


def cmd_validate(args: argparse.Namespace) -> int:
    _, plan = _plan(args)
    if args.json:
        print(json.dumps({"command": "validate", "config": str(args.config), "valid": True, "name": plan.name,
                          "total_params": plan.total_params,
                          "outputs": {head: list(shape) for head, shape in plan.output_shapes.items()}}, indent=2))
        return 0
    shapes = ", ".join(f"{head} {list(shape)}" for head, shape in plan.output_shapes.items())
    print(f"ok: {printable(args.config)} is valid: {plan.total_params:,} params, outputs {shapes}")
    return 0


def cmd_diagram(args: argparse.Namespace) -> int:
    from archgen.output import check_target, write_atomic
    from archgen.report.diagram import plan_to_dot, plan_to_svg

    render = None
    if args.format == "png":
        try:
            import cairosvg
        except (ImportError, OSError):  # OSError: the cairo library itself is missing
            raise UsageError("needs cairosvg and the cairo library: pip install 'archgen[png]'", path="--format",
                             value="png") from None
        render = cairosvg.svg2png
    if args.format == "png" and str(args.output) == "-":
        raise UsageError("a PNG is not written to a terminal; give a file name", path="--output", value="-")
    spec, plan = _plan(args)
    text = plan_to_dot(plan) if args.format == "dot" else plan_to_svg(plan)
    if str(args.output) == "-" and args.json:
        raise UsageError("writes the drawing itself to stdout; leave out --json, or write to a file",
                         path="--output", value="-")
    if str(args.output) == "-":
        sys.stdout.write(text)
        return 0
    suffix = "." + args.format
    target = check_target(args.output or Path(spec.name + suffix), force=args.force, suffix=suffix,
                          inputs={"config": args.config})
    if render is not None:
        write_atomic(target, lambda tmp: render(bytestring=text.encode("utf-8"), write_to=str(tmp)), suffix=suffix,
                     force=args.force)
    else:
        write_atomic(target, lambda tmp: tmp.write_text(text, encoding="utf-8"), suffix=suffix, force=args.force)
    if args.json:
        print(json.dumps({"command": "diagram", "name": plan.name, "files": {args.format: str(target)}}, indent=2))
        return 0
    print(f"wrote {printable(str(target))}")
    return 0


def cmd_auto(args: argparse.Namespace) -> int:
    from archgen.auto.cli import cmd_auto as auto

    return auto(args)


def cmd_train(args: argparse.Namespace) -> int:
    from archgen.train.cli import cmd_train as train

    return train(args)


def cmd_predict(args: argparse.Namespace) -> int:
    from archgen.predict_cli import cmd_predict as predict

    return predict(args)


def cmd_schema(args: argparse.Namespace) -> int:
    from archgen.config.schema import schema_json

    sys.stdout.write(schema_json())
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    if args.multirun:
        return _sweep("build", args)
    from archgen import export
    from archgen.output import check_target

    spec, plan = _plan(args)
    from archgen.planner.guard import check_size

    check_size(plan, args.max_params, _max_memory(args))
    formats = list(dict.fromkeys(args.format or ["keras"]))
    export.check_formats(formats, args.backend)
    outputs = export.targets(args.output, spec.name, formats)
    for fmt, path in outputs.items():
        check_target(path, force=args.force, suffix=export.SUFFIXES[fmt], folder=fmt == "saved_model",
                     inputs={"config": args.config})
    from archgen.backend import select_backend

    backend = select_backend(args.backend)
    start = time.perf_counter()
    from archgen.emit import emit_model

    imported = time.perf_counter()
    model = emit_model(plan, args.precision)
    built = time.perf_counter() - imported
    import_seconds = imported - start
    export.write_all(model, outputs, force=args.force)
    if args.json:
        from archgen.report.data import plan_to_dict

        data = {"command": "build", **plan_to_dict(plan)}  # "outputs": the heads' shapes, as everywhere
        data.update(files={fmt: str(p) for fmt, p in outputs.items()}, build_seconds=round(built, 3),
                    keras_params=model.count_params(), backend=backend)
        print(json.dumps(data, indent=2))
        return 0
    console = _console()
    from archgen.planner.cost import plan_cost
    from archgen.report.summary import print_summary

    print_summary(plan, console, plan_cost(plan), wide=args.wide)
    if args.keras_summary:
        model.summary(print_fn=lambda line, **_: console.print(line, markup=False))
    console.print(f"Keras ({backend}) import {import_seconds:.1f} s, model built in {built:.2f} s")
    for path in outputs.values():
        console.print(f"wrote {printable(str(path))}", markup=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
