"""Serving: the gRPC ranking service over an exported two-tower model."""

from infra.tensorflow_env import prepare_tensorflow_env

prepare_tensorflow_env()
