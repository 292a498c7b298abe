"""Training: a TFRS two-tower retrieval model fitted on the feature job's TFRecords."""

from infra.tensorflow_env import prepare_tensorflow_env

prepare_tensorflow_env()
