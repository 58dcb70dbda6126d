"""Networks written by hand in plain Keras, as independent baselines for what archgen builds."""
