"""Process-wide settings that only an entry point may make: logging and TensorFlow's environment.

Library modules never change the environment when imported; each ``streamrec`` command that
needs TensorFlow calls :func:`prepare_tensorflow` first.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Iterator


def configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not verbose:
        logging.getLogger("kafka").setLevel(logging.CRITICAL)  # it logs every failed connect


def prepare_tensorflow(verbose: bool = False) -> None:
    """Sets what TensorFlow must see before its first import, then imports it.

    TFRS 0.7.7 is written for Keras 2, and TF 2.21 bundles Keras 3 unless told to use tf-keras.
    TensorFlow's C++ runtime prints start-up lines (oneDNN, CUDA probes) straight to file
    descriptor 2 before its log level applies; unless ``verbose``, they are captured during the
    import and shown only if the import fails.
    """
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    if verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0")
        import tensorflow  # noqa: F401

        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with _native_stderr_captured():
        import tensorflow as tf

        tf.config.list_physical_devices()  # the CUDA probe logs on first device query
        tf.get_logger().setLevel(logging.ERROR)


@contextlib.contextmanager
def _native_stderr_captured() -> Iterator[None]:
    """Redirects file descriptor 2 to a temporary file; replays it if the block raises."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        succeeded = False
        try:
            yield
            succeeded = True
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            if not succeeded:
                capture.seek(0)
                sys.stderr.write(capture.read().decode(errors="replace"))
