"""Everything that is not a stage, in subpackages named by their role, lowest layer first:

- :mod:`.core`: the one validated config (:mod:`.core.config`), the error types, and the
  metrics endpoint every process role serves;
- :mod:`.contracts`: the written, versioned contracts at which the stages meet;
- :mod:`.storage`: the storage ports (:mod:`.storage.ports`), their adapters for Redis, Kafka
  and files (:mod:`.storage.adapters`), and the factories that open one by config ``type``;
- :mod:`.devstack`: the embedded broker and Redis, and stage processes on one machine;
- :mod:`.bench`: the benchmarks behind ``streamrec bench``;
- :mod:`.cli`: the composition root, the ``streamrec`` command, one module per process role.

``deploy/`` (Kubernetes manifests, the Grafana dashboard) is not part of the Python package.
The import-linter contracts in ``pyproject.toml`` enforce the layers.
"""
