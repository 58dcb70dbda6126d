"""archgen: describe an encoder-decoder in YAML, get a Keras 3 model with every crop computed."""

__version__ = "0.1.0"
