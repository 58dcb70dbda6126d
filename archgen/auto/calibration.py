"""What archgen's memory model for ``archgen auto`` assumes, and how far it was calibrated."""

DTYPE = "float32"
OPTIMIZER = "adam"
DEVICE = "gpu"  # auto sizes patch and batch for where training happens


def calibration_note(profile) -> str:
    """How far ``profile``'s figures (``archgen.planner.profiles``) were calibrated, in words."""
    return f"memory profile {profile.key} ({profile.status}): {profile.measured}"


def calibration(profile) -> str:
    """The ``memory_calibration`` of ``--json``."""
    return f"archgen's training estimate ({DTYPE}, Adam), {calibration_note(profile)}"
