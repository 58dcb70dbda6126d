"""From a config to what training needs: the network planned at the patch size, each output's
labels and weight, what the masks must hold. Pure: no Keras, no files.
"""

from __future__ import annotations

from dataclasses import dataclass

from archgen.errors import PlanError, SpecError
from archgen.config.model import ArchSpec
from archgen.config.train import REGRESSION_LOSSES, AugmentSpec, DataSpec, TrainSpec
from archgen.train.dataset import Targets
from archgen.train.outputs import OutputTarget, output_targets
from archgen.train.sampling import Window


@dataclass(frozen=True)
class Setup:
    spec: ArchSpec  # input.shape fixed at the patch size
    plan: object  # archgen.planner.ir.Plan of ``spec``
    train: TrainSpec
    data: DataSpec
    augment: AugmentSpec | None
    window: Window
    outputs: list[OutputTarget]
    targets: Targets
    losses: dict  # head -> its loss spec
    metrics: dict  # head -> its metric names

    @property
    def ndim(self) -> int:
        return self.spec.ndim


def plan_training(spec: ArchSpec) -> Setup:
    """Plan ``spec`` for training (see the module's docstring); ``SpecError``/``PlanError`` with a path."""
    from archgen.planner import make_plan

    train, data = spec.train or TrainSpec(), spec.data or DataSpec()
    channels = spec.input.shape[-1]
    patch = data.patch_size or spec.input.shape[:-1]
    if any(n is None for n in patch):
        raise SpecError("leaves a spatial size open; training needs a fixed patch: set data.patch_size",
                        path="input.shape", value=spec.input.shape)
    fixed = spec.model_copy(update={"input": spec.input.model_copy(update={"shape": [*patch, channels]})})
    try:
        plan = make_plan(fixed)
    except PlanError as exc:
        if data.patch_size is None or exc.path != "input.shape":
            raise
        raise PlanError(exc.message, path="data.patch_size", value=data.patch_size, hint=exc.hint) from None
    losses, metrics = _per_head(spec, train)
    regression = [name for name, loss in losses.items() if loss.type in REGRESSION_LOSSES]
    heads = {h.name: (h.activation, h.filters) for h in spec.heads}
    outputs = output_targets(plan, heads, train.deep_supervision, regression)
    main = next(o for o in outputs if o.head == spec.heads[0].name and all(s == 1 for s in o.scale))
    window = Window.of(patch, main.size(patch))
    return Setup(fixed, plan, train, data, spec.augment, window, outputs, _targets(spec, outputs, regression),
                 losses, metrics)


def _per_head(spec: ArchSpec, train: TrainSpec) -> tuple[dict, dict]:
    own = {entry.name: entry for entry in train.heads}
    losses, metrics = {}, {}
    for head in spec.heads:
        entry = own.get(head.name)
        loss = entry.loss if entry is not None and entry.loss is not None else train.loss
        losses[head.name] = loss
        if entry is not None and entry.metrics is not None:
            metrics[head.name] = list(entry.metrics)
        elif loss.type in REGRESSION_LOSSES:
            metrics[head.name] = ["mae"]
        else:
            metrics[head.name] = list(train.metrics)
    return losses, metrics


def _targets(spec: ArchSpec, outputs: list[OutputTarget], regression: list[str]) -> Targets:
    """One mask per case serves every head: labels every class head takes, or one regression map."""
    heads = {o.head: o for o in outputs}
    if regression and len(regression) < len(heads):
        classes = [h for h in heads if h not in regression]
        raise SpecError(f"head {regression[0]} trains as regression and head {classes[0]} on classes; archgen train "
                        "reads one mask per case, so all heads train on it alike", path="train.heads",
                        value=[h.name for h in spec.train.heads] if spec.train else [])
    if regression:
        widths = {heads[h].channels for h in regression}
        if len(widths) > 1:
            raise SpecError("regression heads of different channel counts cannot share one target map",
                            path="heads", value=sorted(widths))
        names = ", ".join(regression)
        return Targets(None, widths.pop(), f"head{'s' if len(regression) > 1 else ''} {names}")
    fewest = min(heads.values(), key=lambda o: o.mode.classes)
    mode = fewest.mode
    kind = f"{mode.activation}{' logits' if mode.from_logits else ''}, {mode.channels} channel" + \
        ("s" if mode.channels != 1 else "")
    return Targets(mode.classes, 1, f"head {fewest.head} ({kind})")
