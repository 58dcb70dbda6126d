"""Time to construct the seed U-Net: archgen (spec + plan + emit) vs the same network written by hand
in plain Keras (tests/reference/seed_unet.py).

TensorFlow is imported first; the two are alternated. Target ratio: <= 1.05.
    python benchmarks/build_overhead.py [--quick]
"""

from __future__ import annotations

from common import ROOT, alternate, build_seed_unet, parse_args, report


def main() -> None:
    args = parse_args(__doc__)
    from archgen.emit import emit_model
    from archgen.backend import import_keras
    from archgen.planner import make_plan
    from archgen.config import load_spec

    keras = import_keras()
    config = ROOT / "conf" / "unet.yaml"

    def archgen_build():
        emit_model(make_plan(load_spec(config)))
        keras.backend.clear_session()

    def seed_build():
        build_seed_unet()
        keras.backend.clear_session()

    archgen_build(), seed_build()  # warm-up: first-call costs of Keras, not of either builder
    times = alternate({"seed, hand-written Keras": seed_build, "archgen: spec + plan + emit": archgen_build},
                      reps=3 if args.quick else 15)
    med = report("Build the seed U-Net (572x572x1), TensorFlow already imported", times, "seed, hand-written Keras")
    print(f"  ratio archgen / hand-written: {med['archgen: spec + plan + emit'] / med['seed, hand-written Keras']:.3f}"
          " (target <= 1.05)")


if __name__ == "__main__":
    main()
