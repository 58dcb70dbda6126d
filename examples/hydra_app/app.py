"""archgen inside your own Hydra app: the network is the ``model`` group of the app's config.

    python examples/hydra_app/app.py
    python examples/hydra_app/app.py model.encoder.depth=3 model.encoder.block.norm=batch
    python examples/hydra_app/app.py model=unet_valid 'model.input.shape=[92,92,1]'
    python examples/hydra_app/app.py -m model.encoder.depth=2,3

``archgen.hydra_conf.register()`` puts archgen's schema in Hydra's ConfigStore as ``model/archgen``;
each file in ``conf/model/`` starts from it (its defaults list), so every key of the schema can
be set on the command line without ``+``. ``archgen.build_model(cfg.model)`` validates the node
and names a bad value by its key in this app's config (``model.encoder.depth``).
"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

import archgen
import archgen.hydra_conf

archgen.hydra_conf.register()  # before @hydra.main composes the config


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    try:
        model = archgen.build_model(cfg.model, backend=cfg.backend)
    except archgen.ArchgenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    shapes = ", ".join(f"{name} {tuple(out.shape[1:])}" for name, out in zip(model.output_names, model.outputs))
    print(f"built {model.name}: {model.count_params():,} parameters; outputs {shapes}")


if __name__ == "__main__":
    main()
