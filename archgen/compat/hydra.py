"""Hydra's internals: what archgen calls that is not Hydra's public API.

``hydra.core.override_parser`` is the API Hydra's sweeper plugins use; ``BasicSweeper``,
``ConfigLoaderImpl`` and the global-state backup of ``hydra.initialize`` are private.
"""

from __future__ import annotations

import functools
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

WRITTEN_FOR = "hydra-core>=1.3,<1.4"


@functools.cache
def override_parser():
    """Hydra's override parser (``OverridesParser``): ``parse_override(text)`` gives one
    ``Override``, ``parse_overrides(texts)`` a list; a bad override raises ``HydraException``."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create()


def split_sweep(parsed: Sequence[Any]) -> list[list[str]]:
    """Each variant's overrides, as Hydra's basic sweeper makes them of parsed ``Override``s
    (the cross product of the sweeps, in Hydra's order, all in one batch)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    return [list(v) for v in BasicSweeper.split_arguments(list(parsed), max_batch_size=None)[0]]


def apply_overrides(parsed: Sequence[Any], cfg: Any) -> None:
    """Apply parsed ``Override``s to the ``DictConfig`` ``cfg`` in place, as Hydra applies a job's
    overrides to its config. Raises ``HydraException`` or ``OmegaConfBaseException``."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl

    ConfigLoaderImpl._apply_overrides_to_config(list(parsed), cfg)


@contextmanager
def global_hydra_set_aside() -> Iterator[None]:
    """While the block runs, Hydra's global state (a running app's) is cleared, so Hydra's compose
    API can start; afterwards it is restored as it was."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.initialize import get_gh_backup, restore_gh_from_backup

    if not GlobalHydra.instance().is_initialized():
        yield
        return
    backup = get_gh_backup()
    GlobalHydra.instance().clear()
    try:
        yield
    finally:
        restore_gh_from_backup(backup)
