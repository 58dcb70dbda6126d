"""archgen's memory model for ``archgen auto``: the training estimate of the network a plan would build.

nnU-Net sizes the patch and batch with a heuristic: the number of conv output elements of one
sample against a reference value measured once on a GPU and scaled linearly to the target. This
model instead writes the candidate configuration as the archgen config ``auto`` would write,
plans it (pure Python) and takes the planner's training estimate (``archgen.planner.cost``): weights,
gradients and Adam's two moments in float32, the activations at the peak of a simulated training
step, and the runtime's constant -- the figure ``archgen summary CONFIG --fit --device gpu`` reports.
The constants are a memory profile's (``archgen.planner.profiles``): by default the GPU's of the
back end training would use, whose calibration status (provisional, fitted to a few H200 peaks)
every report names. nnU-Net itself trains with SGD, one slot per weight, and float16 activations
under autocast: for its own training the figure is on the safe side.

Speed: reading the YAML and planning take ~15 ms each for a ResEnc 3D network, and a shrink loop
tries one patch per step (a 3d_lowres search runs one loop per spacing step). The spec is read once
per topology and only its patch changes; plans are cached per patch and topology, and the training
estimate is linear in the batch, so each candidate is planned once whatever batch is asked of it.
"""

from __future__ import annotations

import yaml

from archgen.auto.calibration import DEVICE, DTYPE, OPTIMIZER
from archgen.auto.config import network_yaml
from archgen.auto.records import Family, Topology, features_per_stage


def topology_configuration(topo: Topology, family: Family) -> dict:
    """The nnU-Net configuration keys ``config.stage_lists`` reads, for one candidate topology."""
    n, dim = len(topo.strides), len(topo.patch)
    return {"patch_size": [int(p) for p in topo.patch], "n_stages": n,
            "features_per_stage": features_per_stage(n, dim),
            "kernel_sizes": [list(map(int, k)) for k in topo.kernels],
            "strides": [list(map(int, s)) for s in topo.strides],
            family.blocks_key: list(family.blocks_encoder[:n]),
            "n_conv_per_stage_decoder": list(family.blocks_decoder[:n - 1])}


def spec_of(conf: dict, family: Family, channels: int, classes: int):
    """archgen's spec of the config ``auto`` writes for ``conf`` (nnU-Net's keys)."""
    from archgen.config.load import validate

    return validate(yaml.safe_load(network_yaml(conf, family, channels, classes, "auto_memory")))


def with_patch(spec, patch: list[int]):
    """``spec`` with another patch (the input's spatial shape); the channels stay."""
    shape = [*patch, spec.input.shape[-1]]
    return spec.model_copy(update={"input": spec.input.model_copy(update={"shape": shape})})


class ArchgenMemory:
    """Training estimates in bytes for the candidates of one dataset, against one budget."""

    name = "archgen"

    def __init__(self, family: Family, channels: int, classes: int, budget_bytes: int, profile=None):
        from archgen.planner.profiles import memory_profile

        self.family, self.channels, self.classes = family, channels, classes
        self.profile = profile or memory_profile(None, DEVICE)  # where training would run: the GPU
        self.budget = int(budget_bytes)
        self._costs: dict[tuple, tuple[int, int]] = {}  # candidate -> (fixed bytes, bytes per sample)
        self._specs: dict[tuple, object] = {}  # topology -> spec: parsing YAML costs as much as planning
        self.plans_made = 0

    def _split(self, topo: Topology) -> tuple[int, int]:
        from archgen.planner.build import make_plan
        from archgen.planner.cost import activation_bytes, training_bytes

        shape = (tuple(map(tuple, topo.strides)), tuple(map(tuple, topo.kernels)))
        key = (tuple(topo.patch), *shape)
        if key not in self._costs:
            if shape not in self._specs:
                conf = topology_configuration(topo, self.family)
                self._specs[shape] = spec_of(conf, self.family, self.channels, self.classes)
            plan = make_plan(with_patch(self._specs[shape], list(topo.patch)))
            per_sample = activation_bytes(plan, 1, DTYPE, self.profile)
            self._costs[key] = (training_bytes(plan, 1, DTYPE, OPTIMIZER, self.profile) - per_sample, per_sample)
            self.plans_made += 1
        return self._costs[key]

    def training_bytes(self, topo: Topology, batch: int) -> int:
        """``archgen.planner.cost.training_bytes`` of the candidate's plan: linear in the batch."""
        fixed, per_sample = self._split(topo)
        return fixed + batch * per_sample

    def fits(self, topo: Topology, batch: int) -> bool:
        return self.training_bytes(topo, batch) <= self.budget

    def max_batch(self, topo: Topology) -> int:
        """The largest batch whose estimate fits the budget (``archgen.planner.fit.max_batch``)."""
        fixed, per_sample = self._split(topo)
        return max(0, (self.budget - fixed) // per_sample)
