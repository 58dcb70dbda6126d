"""archgen inside your own Hydra app: the network is the app's model group (conf/model/*.yaml)."""

import sys

import hydra

import archgen
import archgen.hydra_conf

archgen.hydra_conf.register()  # model/archgen, before @hydra.main composes the config


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(cfg) -> None:
    try:  # archgen checks the model's keys and values; errors name them as model.encoder.depth
        model = archgen.build_model(cfg.model, backend=cfg.backend)
    except archgen.ArchgenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    shapes = ", ".join(f"{name} {tuple(out.shape[1:])}" for name, out in zip(model.output_names, model.outputs))
    print(f"built {model.name}: {model.count_params():,} parameters; outputs {shapes}")


if __name__ == "__main__":
    main()
