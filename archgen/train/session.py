"""One training run from composed config data to a run folder: the order of the checks and the
work, shared by ``archgen train`` and each variant of a training sweep.

Everything that can be refused is refused before the run folder is touched: the config, the
run folder itself, the plan, the size guard, every file of the data folder, and (Keras imported,
on the CPU) a step's memory against the memory free. Then the network is built and trained, and
the final files written together.
"""

from __future__ import annotations

import copy
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archgen.errors import ArchgenError, SpecError, printable


@dataclass
class Request:
    """What the command line asked of one run."""

    data_dir: str | None = None  # --data; None: the config's data.dir
    run_dir: Path = Path("run")
    steps: int | None = None  # --steps
    resume: bool = False
    force: bool = False
    quiet: bool = False
    backend: str | None = None


def with_steps(data: dict[str, Any], steps: int | None) -> dict[str, Any]:
    """The config data with ``train.steps`` set (and ``train.epochs`` dropped) for ``--steps``."""
    if steps is None:
        return data
    data = copy.deepcopy(data)
    train = data.get("train")
    train = dict(train) if isinstance(train, dict) else {}
    train.pop("epochs", None)
    train["steps"] = steps
    data["train"] = train
    return data


def train_config(data: dict[str, Any], request: Request) -> dict[str, Any]:
    """Train the network of the composed config ``data``; return the run's metrics (metrics.json)
    with ``files``."""
    from archgen.planner.guard import check_size
    from archgen.config.load import validate
    from archgen.train.run_dir import RunDir, RunError
    from archgen.train.setup import plan_training

    if request.force and request.resume:
        raise RunError("--force starts over and --resume continues: pass one of them", path="--resume")
    data = with_steps(data, request.steps)
    spec = validate(data)
    folder, key = _data_folder(spec, request)
    run_dir = RunDir(request.run_dir)
    run_dir.check(resume=request.resume, force=request.force)
    config_text = _config_text(data)
    state = None
    if request.resume and run_dir.is_run():
        _check_same_config(run_dir, data)
        state = run_dir.read_state()
    if request.resume and state is None:  # as a job that is requeued before its first checkpoint: go on, and say so
        print(f"warning: --resume: {printable(str(run_dir.path))} holds no checkpoint yet; training starts from step 0",
              file=sys.stderr)
    setup = plan_training(spec)
    check_size(setup.plan)
    dataset = _load_data(setup, folder, key)
    from archgen.backend import select_backend

    backend = select_backend(request.backend)
    from archgen.train.augment import make_augment
    from archgen.train.distribute import data_parallel
    from archgen.train.loop import run
    from archgen.train.memory import check_training_memory
    from archgen.train.progress import Progress

    check_training_memory(setup, backend, dataset.train[0])  # on the CPU, a step past the free memory is a silent kill
    start = time.perf_counter()
    run_dir.claim(resume=request.resume, force=request.force)  # the last refusal: the folder exists from here
    try:
        with data_parallel(setup.train.distribute, setup.train.batch_size) as devices:
            if state is None:
                run_dir.start(config_text, force=request.force)
            outcome = run(setup, dataset, run_dir, state, Progress(request.quiet),
                          make_augment(setup.augment, setup.ndim), devices)
            metrics = _metrics(setup, dataset, outcome, backend, time.perf_counter() - start)
            picture = _picture(outcome.model, setup, dataset)
            export = _export(outcome.model, setup)
        metrics["files"] = run_dir.finish(export, metrics, picture)
    except BaseException:  # Ctrl-C included: a run replaced with --force is not lost to one that did not start
        run_dir.put_back()
        raise
    finally:
        run_dir.release()
    return metrics


def _data_folder(spec, request: Request) -> tuple[Path, str]:
    if request.data_dir is not None:
        return Path(request.data_dir), "--data"
    if spec.data is not None and spec.data.dir is not None:
        return Path(spec.data.dir), "data.dir"
    raise SpecError("is required: the folder of images/ and masks/ (or data.dir in the config)", path="--data")


def _load_data(setup, folder: Path, key: str):
    from archgen.train.dataset import load_dataset

    d = setup.data
    return load_dataset(folder, key, ndim=setup.ndim, channels=setup.spec.input.shape[-1], min_size=setup.window.out,
                        targets=setup.targets, validation=d.validation, normalize=d.normalize, seed=setup.train.seed,
                        images=d.images, masks=d.masks, workers=max(d.workers, 1))


def _config_text(data: dict[str, Any]) -> str:
    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return "# the composed config of this run (archgen train)\n" + yaml.dump(data, Dumper=dumper, sort_keys=False)


IGNORED_ON_RESUME = (("train", "steps"), ("train", "epochs"), ("data", "dir"))


def _check_same_config(run_dir, data: dict[str, Any]) -> None:
    """A run resumes with the config it started with (``train.steps`` may grow)."""
    from archgen.config.read import read_yaml_text
    from archgen.train.run_dir import RunError

    text = run_dir.recorded_config()
    if text is None:
        return
    try:
        recorded = read_yaml_text(text, key="--resume")
    except ArchgenError:
        raise RunError("its config.yaml is damaged; start over with --force", path="--resume",
                       value=str(run_dir.path)) from None
    now, then = _without(data), _without(recorded)
    difference = _first_difference(then, now)
    if difference is not None:
        where, old, new = difference
        raise RunError(f"the run was trained with another config: {where} is {printable(str(old))} there and "
                       f"{printable(str(new))} now; resume with the config it started with", path="--resume",
                       value=str(run_dir.path))


def _without(data: dict[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(data)
    for section, key in IGNORED_ON_RESUME:
        if isinstance(data.get(section), dict):
            data[section].pop(key, None)
            if not data[section]:
                data.pop(section)
    return data


def _first_difference(a: Any, b: Any, path: str = "") -> tuple[str, Any, Any] | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(a) + [k for k in b if k not in a]:
            found = _first_difference(a.get(key, "(unset)"), b.get(key, "(unset)"), f"{path}.{key}" if path else key)
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            found = _first_difference(x, y, f"{path}[{i}]")
            if found:
                return found
        return None
    return None if a == b and type(a) is type(b) else (path or "config", a, b)


def _metrics(setup, dataset, outcome, backend: str, seconds: float) -> dict[str, Any]:
    state, val = outcome.state, outcome.validation
    images = outcome.steps_this_session * setup.train.batch_size
    metrics: dict[str, Any] = {
        "name": setup.spec.name,
        "val_dice": None if val is None else val.dice,
        "val_loss": None if val is None else val.loss,
        "steps": state.step,
        "epochs": state.epoch,
        "seconds": round(state.seconds, 3),
        "params": setup.plan.total_params,
        "flops": setup.plan.total_flops,
        "best_step": state.best.get("step"),
        "best_epoch": state.best.get("epoch"),
        "best_metric": state.best.get("metric"),
        "batch_size": setup.train.batch_size,
        "input_shape": list(setup.plan.input_shape),
        "train_cases": len(dataset.train),
        "validation_cases": len(dataset.validation),
        "backend": backend,
        "devices": outcome.devices,
        "images_per_second": round(images / outcome.train_seconds, 2) if outcome.train_seconds > 0 else None,
        "session_seconds": round(seconds, 3),
    }
    if val is not None:
        metrics["val_dice_per_class"] = {head: {str(c): v for c, v in classes.items()}
                                         for head, classes in val.per_class.items()}
        if val.mae:
            metrics["val_mae"] = val.mae
    if state.log:
        last = state.log[-1]
        metrics["train_loss"] = last.get("loss")
    return _json_safe(metrics)


def _json_safe(value: Any) -> Any:
    """``value`` with every NaN or infinity as None: metrics.json and ``--json`` stay strict JSON."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _picture(model, setup, dataset) -> bytes | None:
    """image | label | prediction of the first validation case."""
    import numpy as np

    from archgen.train import picture, scores
    from archgen.train.validate import heads_to_predict, predict_case

    if not dataset.validation:
        return None
    case = dataset.validation[0]
    head = heads_to_predict(setup)[0]
    output = predict_case(model, setup, case)[head]
    target = next(o for o in setup.outputs if o.name == head)
    shown = output if target.mode is None else \
        scores.predicted_labels(output, target.mode.activation, target.mode.from_logits).astype(np.int64)
    return picture.png_bytes(picture.panels(case.image, case.target, shown, setup.ndim))


def _export(model, setup):
    """An uncompiled float32 copy of the trained network: what ``archgen predict`` loads."""
    from archgen.emit import emit_model

    export = emit_model(setup.plan, "float32")
    export.set_weights(model.get_weights())
    return export
