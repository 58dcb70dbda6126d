"""Pretrained encoders from keras.applications: one data row per backbone (``table.py``).

Pure Python, like the planner that reads it: the table, not TensorFlow, says where each backbone's
stages end, with how many channels, at which stride, how many parameters it has and which input
sizes it takes.
"""

from archgen.backbones.table import BACKBONES, Backbone, Tap

__all__ = ["BACKBONES", "Backbone", "Tap"]
