"""What archgen's memory model for ``archgen auto`` assumes, and how far it was calibrated."""

DTYPE = "float32"
OPTIMIZER = "adam"
CALIBRATION_NOTE = ("calibrated against TensorFlow 2.21 on CPU; on an H200 with Keras on JAX it was 0.84-2.1x the "
                    "measured peak (benchmarks/gpu_throughput.py)")
CALIBRATION = f"archgen's training estimate (float32, Adam), {CALIBRATION_NOTE}"
