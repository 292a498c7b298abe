"""Environment TensorFlow must see before its first import, set by the stages that use it."""

import os


def prepare_tensorflow_env() -> None:
    # TFRS 0.7.7 is written for Keras 2; TF 2.21 bundles Keras 3 unless told to use tf-keras.
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # hide C++ info logs (oneDNN, CUDA probes)
