"""An nnU-Net configuration -> an archgen config in the stage form (``encoder.stages``/``decoder.stages``).

The network is dynamic-network-architectures' ``PlainConvUNet`` (or ``ResidualEncoderUNet``) as
nnU-Net builds it from its plans: each stage's first conv strides (no pooling layer), transposed
convs with kernel = stride, instance norm (eps 1e-5, affine), leaky ReLU 0.01, conv bias, a 1x1
segmentation head on every decoder stage (deep supervision). Axes are in nnU-Net's order after
``transpose_forward`` (the coarsest axis first), channels last as in every archgen config.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from archgen.auto.calibration import calibration_note
from archgen.auto.records import FAMILIES, Dataset, Family


def _axis(values: list[int]) -> int | list[int]:
    """One int where every axis agrees, else one per axis."""
    return values[0] if len(set(values)) == 1 else list(values)


def _flow(value: Any) -> str:
    """A number or list of numbers as a comment shows it."""
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


COMMENT_WIDTH = 80  # printed to a terminal too: a longer line would be wrapped there, maybe inside a number


def escape(text: str) -> str:
    """``text`` with every character that is not printable (line breaks of every kind -- \\n, \\r,
    U+0085, U+2028, U+2029 --, other controls, format characters, lone surrogates) written as
    Python writes it in a repr: a comment stays one line, and YAML can read it."""
    text = str(text)
    return text if text.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _comment(text: str, level: int) -> list[str]:
    """``text`` (escaped) as comment lines of at most COMMENT_WIDTH, broken only at spaces (numbers,
    lists and the command line's words stay whole); continuation lines indented below their item."""
    import textwrap

    first = "# " + "  " * level
    kept = re.sub(r"\[[^\[\]]*\]", lambda m: m.group(0).replace(" ", "\0"), escape(text))  # a list stays on one line
    return [line.replace("\0", " ") for line in textwrap.wrap(
        kept, COMMENT_WIDTH, initial_indent=first, subsequent_indent=first + "  ", break_long_words=False,
        break_on_hyphens=False)] or [first.rstrip()]


class _Flow(dict):
    """A mapping written on one line: ``- {filters: 32, convs: 2, kernel_size: [1, 3, 3]}``."""


class _Compact(_Flow):
    """A one-line mapping too long for COMMENT_WIDTH: its lists without spaces (``[1,3,3]``)."""


class _Dumper(yaml.SafeDumper):
    """PyYAML's safe emitter, with sequences indented below their key, no aliases, one-line mappings
    for ``_Flow`` and lists of scalars, and the spaces inside a ``_Compact`` mapping's lists left out."""

    _node = None
    _compact = False

    def ignore_aliases(self, data: Any) -> bool:
        return True

    def increase_indent(self, flow: bool = False, indentless: bool = False):
        return super().increase_indent(flow, False)

    def serialize_node(self, node, parent, index):
        self._node = node  # the node whose start event ``emit`` is about to get
        super().serialize_node(node, parent, index)

    def emit(self, event):
        if isinstance(event, yaml.MappingStartEvent) and getattr(self._node, "compact", False):
            event.compact = True
        super().emit(event)

    def expect_flow_mapping(self):
        if self.flow_level == 0:
            self._compact = getattr(self.event, "compact", False)
        super().expect_flow_mapping()

    def expect_flow_sequence(self):
        if self.flow_level == 0:
            self._compact = False
        super().expect_flow_sequence()

    def write_indicator(self, indicator, need_whitespace, whitespace=False, indention=False):
        if indicator == "," and self._compact and self.flow_level > 1:
            whitespace = True  # the next item follows without a space
        super().write_indicator(indicator, need_whitespace, whitespace, indention)


def _represent_flow(dumper: _Dumper, data: dict):
    node = dumper.represent_mapping("tag:yaml.org,2002:map", data, flow_style=True)
    node.compact = isinstance(data, _Compact)
    return node


def _represent_list(dumper: _Dumper, data: list):
    flat = all(not isinstance(v, (dict, list)) for v in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flat)


_Dumper.add_representer(_Flow, _represent_flow)
_Dumper.add_representer(_Compact, _represent_flow)
_Dumper.add_representer(list, _represent_list)


def dump_yaml(data: dict) -> str:
    """``data`` (a mapping) as YAML by PyYAML's emitter: keys in their order, never wrapped."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=float("inf"),
                     allow_unicode=False)


def _stage(stage: dict, indent: int) -> _Flow:
    """A stage as a one-line mapping; compact where its line at ``indent`` would pass COMMENT_WIDTH
    (a terminal would wrap it inside a list)."""
    line = " " * indent + dump_yaml({"x": [_Flow(stage)]}).splitlines()[-1].lstrip()
    return _Compact(stage) if len(line) > COMMENT_WIDTH else _Flow(stage)


def stage_lists(conf: dict, family: Family) -> tuple[list[dict], list[dict]]:
    """The encoder and decoder stages (level 1 first) of one nnU-Net configuration."""
    n = conf["n_stages"]
    enc_blocks = conf[family.blocks_key]
    encoder = []
    for s in range(n):
        stage = {"filters": conf["features_per_stage"][s]}
        if family.residual:
            stage.update(convs=2, blocks=enc_blocks[s])  # BasicBlockD: two convs per block
        else:
            stage["convs"] = enc_blocks[s]
        stage.update(kernel_size=_axis(conf["kernel_sizes"][s]), stride=_axis(conf["strides"][s]))
        encoder.append(stage)
    dec_convs = conf["n_conv_per_stage_decoder"]  # deepest first, as nnU-Net lists it
    decoder = [{"filters": conf["features_per_stage"][level], "convs": dec_convs[n - 2 - level],
                "kernel_size": _axis(conf["kernel_sizes"][level])} for level in range(n - 1)]
    return encoder, decoder


STAGE_INDENT = 4  # encoder: / stages: / - {...}


def network_data(conf: dict, family: Family, channels: int, classes: int, name: str) -> dict[str, Any]:
    """The config (plain data, in the order it is written) for one nnU-Net configuration: what
    ``auto`` writes and what its archgen memory model plans."""
    encoder, decoder = stage_lists(conf, family)
    n = conf["n_stages"]
    block = {"norm": "instance", "norm_epsilon": 1.0e-5, "activation": "leaky_relu", "negative_slope": 0.01,
             "bias": True}
    enc: dict[str, Any] = {}
    if family.residual:
        enc["stem"] = {"convs": 1}
        enc["block"] = {"type": "residual", "shortcut": "resnet_d", **block}
    else:
        enc["block"] = dict(block)
    enc["downsample"] = {"type": "stride"}
    enc["stages"] = encoder
    dec: dict[str, Any] = {"align": "none"}
    if family.residual:
        dec["block"] = {"type": "conv", **block}
    dec["upsample"] = {"type": "transpose", "bias": True}
    dec["stages"] = decoder
    head: dict[str, Any] = {"name": "logits", "filters": classes}
    if n > 2:
        head["deep_supervision"] = list(range(2, n))
    return {"name": name, "input": {"shape": [*conf["patch_size"], channels]}, "padding": "same", "encoder": enc,
            "decoder": dec, "heads": [head]}


def network_yaml(conf: dict, family: Family, channels: int, classes: int, name: str) -> str:
    """``network_data`` as YAML, written by PyYAML's emitter; a stage a line."""
    data = network_data(conf, family, channels, classes, name)
    for part in ("encoder", "decoder"):
        data[part]["stages"] = [_stage(st, STAGE_INDENT) for st in data[part]["stages"]]
    if "stem" in data["encoder"]:
        data["encoder"]["stem"] = _Flow(data["encoder"]["stem"])
    pieces = []
    for key, value in data.items():  # one top-level key at a time: a comment may go between them
        if key == "encoder":
            pieces.append("# Stages: level 1 (full resolution) first, in the encoder and the decoder.\n")
        pieces.append(dump_yaml({key: value}))
    return "".join(pieces)


def _gib(n: int) -> str:
    return f"{n:,} bytes ({n / 2**30:.2f} GiB)"


def _profile_options(why: dict) -> str:
    """The ``summary`` options that name the profile (none for summary's default, tensorflow/cpu)."""
    backend, _, device = why["memory_profile"].partition("/")
    return "".join(f" --{k} {v}" for k, v, default in (("backend", backend, "tensorflow"), ("device", device, "cpu"))
                   if v != default)


def _profile_note(why: dict) -> str:
    """How far the memory profile that sized the patch was calibrated."""
    from archgen.planner.profiles import profile_named

    return calibration_note(profile_named(why["memory_profile"]))


def _memory_notes(result: dict, conf: dict, family: Family) -> tuple[str, list[tuple[int, str]]]:
    """How the patch shrink ended, and which memory model sized the patch and batch, with its figures."""
    why = conf["_why"]
    at = f"{family.name} at {result['gpu_memory_target_in_gb']:g} GB"
    nnunet = f"{why['vram_estimate']:,} feature-map elements vs reference {why['vram_reference']:,.0f} ({at})"
    if why["memory_model"] == "nnunet":
        return (f"nnU-Net's VRAM estimate fits: {nnunet}.",
                [(0, "Memory model: nnunet (--memory nnunet): nnU-Net's reference-VRAM heuristic, its decisions "
                     "exactly.")])
    return (f"archgen's training estimate of this network for a batch of 2 fits the budget: "
            f"{_gib(why['memory_estimate_batch_2_bytes'])} <= {_gib(why['memory_budget_bytes'])} (--fit, {at}).",
            [(0, f"Memory model: archgen (--memory archgen, the default): the training estimate `archgen summary "
                 f"--fit{_profile_options(why)}` reports ({why['memory_dtype']}, {why['memory_optimizer']}: weights, gradients, optimizer "
                 f"state, activations at the step's peak, the runtime), {_profile_note(why)}. The batch is the "
                 f"largest that fits: {_gib(why['memory_estimate_bytes'])} at batch {conf['batch_size']}. nnU-Net's "
                 f"heuristic (--memory nnunet) counts {nnunet} for this patch.")])


def render(result: dict, configuration: str, dataset: Dataset, name: str, command: str) -> str:
    """The YAML text, with a comment block saying which inputs and rules produced it."""
    family = FAMILIES[result["family"]]
    conf = result["configurations"][configuration]
    why = conf["_why"]
    dim = len(conf["patch_size"])
    net = "ResidualEncoderUNet" if family.residual else "PlainConvUNet"
    shrink_end, memory = _memory_notes(result, conf, family)
    how = (f"as its {family.planner} (nnunetv2 2.8.1) plans it" if why["memory_model"] == "nnunet" else
           f"by its {family.planner}'s rules (nnunetv2 2.8.1), patch and batch sized by archgen's memory model")
    notes = [  # (indent level, text): each wrapped at COMMENT_WIDTH below
        (0, f"Written by `archgen auto` ({command})."),
        (0, f"nnU-Net's {configuration} configuration {how}, for dynamic_network_architectures' {net}: input "
            f"channels {dataset.channels}, classes {dataset.classes} (len(labels), background included)."),
        (0, f"Inputs: {dataset.source}"),
        *((1, f"note: {note}") for note in dataset.notes),
        (1, f"target spacing {_flow([round(s, 6) for s in result['fullres_target_spacing']])} (median per axis; "
            f"a much coarser axis with few voxels takes its 10th percentile)"),
        (1, f"axis order: transpose_forward {result['transpose_forward']} (coarsest axis first); "
            f"median shape after resampling {_flow([round(m, 2) for m in result['median_shape_after_resampling']])}"),
        (0, f"Rules: spacing {_flow([round(s, 6) for s in conf['spacing']])}; initial patch "
            f"{_flow([round(p, 2) for p in why['initial_patch_size']])} (1/spacing aspect, "
            f"{'2048^2' if dim == 2 else '256^3'} voxels, clipped to the median shape); "
            "pool an axis while its feature map stays >= 4 (>= 8 before the pool) and its spacing is within 2x "
            "of the finest; kernel 1 on an axis until its spacing is within 2x of the finest; features 32 "
            f"doubling, capped at {320 if dim == 3 else 512}; patch shrunk {why['shrink_steps']} step(s) until "
            f"{shrink_end}"),
        *memory,
        (0, f"Patch size {conf['patch_size']}, batch size {conf['batch_size']} (from memory "
            f"{why['batch_size_from_memory']}, dataset cap {why['batch_size_cap_dataset']} = "
            f"{why['max_dataset_covered']:g} of its voxels, minimum 2)."),
    ]
    if family.residual:
        notes.append((0, "ResidualEncoderUNet: a stem (one conv to features_per_stage[0]) and BasicBlockD stages "
                         "(ResNet-D shortcuts: avg-pool + 1x1 conv + norm where the shape changes)."))
    lines = [line for level, text in notes for line in _comment(text, level)]
    # The batch goes with the patch: `archgen train` on this file trains what the budget was planned for.
    sized = ("nnU-Net's batch size" if why["memory_model"] == "nnunet" else
             f"the batch archgen's memory model sized ({why['memory_dtype']}, {why['memory_optimizer']}: train's "
             f"defaults)")
    train = _comment(f"train.batch_size: {sized}; `archgen train` trains with it.", 0) + [dump_yaml({"train": {"batch_size": conf["batch_size"]}})]
    if dataset.normalize is not None:  # nnU-Net's scheme for the channels dataset.json names
        train = _comment(f"data.normalize: nnU-Net's scheme for its channel names ({dataset.normalize}).", 0) + [
            dump_yaml({"data": {"normalize": dataset.normalize}}).rstrip("\n")] + train
    return ("\n".join(lines) + "\n" + network_yaml(conf, family, dataset.channels, dataset.classes, name)
            + "\n".join(train))
