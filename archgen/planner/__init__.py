"""Pure-Python planner: spec -> Plan. Never imports TensorFlow or Keras."""

from archgen.planner.build import make_plan
from archgen.planner.ir import LayerPlan, Plan, SizeRule

__all__ = ["LayerPlan", "Plan", "SizeRule", "make_plan"]
