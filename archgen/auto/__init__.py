"""``archgen auto``: the network derived from the data, as nnU-Net's planner derives it.

Pure Python (numpy for nnU-Net's exact rounding and percentiles); never imports TensorFlow or PyTorch.

    from archgen.auto import plan_dataset, FAMILIES
    from archgen.auto.inputs import from_figures
    result = plan_dataset(from_figures("128,128,128", "1,1,1", 1, 2, None), FAMILIES["plain"], 8.0)
    nnunets = plan_dataset(from_figures("128,128,128", "1,1,1", 1, 2, None), FAMILIES["plain"], 8.0, "nnunet")
"""

from archgen.auto.nnunet import FAMILIES, Dataset, Family, plan_dataset

__all__ = ["FAMILIES", "Dataset", "Family", "plan_dataset"]
