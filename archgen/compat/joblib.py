"""joblib's internals: how loky, joblib's process pool, kills its workers.

Once one worker died, loky kills the others through ``process_executor.kill_process_tree``
(a name looked up when called, so it can be wrapped). If that name moves, nothing is recorded.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

WRITTEN_FOR = "joblib>=1.3,<1.7"


@contextmanager
def pool_kills() -> Iterator[set[int]]:
    """The PIDs of the workers, still alive, that a loky pool killed while the block ran (not the
    worker that died first, which was already dead); an empty set without joblib."""
    killed: set[int] = set()
    try:
        from joblib.externals.loky import process_executor
    except ImportError:
        yield killed
        return
    real = getattr(process_executor, "kill_process_tree", None)
    if real is None:
        yield killed
        return

    def recording(process, *args, **kwargs):
        if process.exitcode is None and process.is_alive():  # the worker that died first is not a bystander
            killed.add(process.pid)
        return real(process, *args, **kwargs)

    process_executor.kill_process_tree = recording
    try:
        yield killed
    finally:
        process_executor.kill_process_tree = real
