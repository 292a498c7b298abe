"""Training: a TFRS two-tower retrieval model fitted on the feature job's TFRecords.

TensorFlow Recommenders needs Keras 2: the entry point must set ``TF_USE_LEGACY_KERAS=1``
before TensorFlow is first imported (``streamrec train`` does, see
:func:`streamrec.infra.cli.runtime.prepare_tensorflow`).
"""
