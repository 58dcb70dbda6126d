"""An override with several values (``encoder.depth=3,4``, ``range(1,3)``) where one config is read.

Only ``summary -m`` and ``build -m`` sweep. The library raises ``SweepValueError`` worded for a
caller that cannot sweep; the command line rewords it for the command that was run, so the hint
to add ``-m`` is given only where ``-m`` exists.
"""

from __future__ import annotations

from archgen.errors import SpecError

SWEEPING_COMMANDS = ("summary", "build")
_SWEEPS = "summary -m and build -m run one job per value"


class SweepValueError(SpecError):
    """``key=value`` holds several values; ``as_list``: a comma list (it may have meant a list or text)."""

    def __init__(self, key: str, value: str, as_list: bool, command: str | None = None):
        self.key, self.sweep_value, self.as_list, self.command = key, value, as_list, command
        super().__init__(self._message(), path=key, value=value)

    def for_command(self, command: str) -> SweepValueError:
        return SweepValueError(self.key, self.sweep_value, self.as_list, command)

    def _message(self) -> str:
        key, value = self.key, self.sweep_value
        other = (f"for a list write {key}=[{value}], for text with a comma quote it: {key}='{value}'"
                 if self.as_list else "")
        if self.command in SWEEPING_COMMANDS:
            return f"looks like a sweep; did you mean -m? ({_SWEEPS}{'; ' + other if other else ''})"
        who = f"archgen {self.command}" if self.command else "a single config"
        return (f"looks like a sweep, but {who} takes one value per key and cannot sweep "
                f"({other + '; ' if other else ''}{_SWEEPS})")
