"""The foundation every stage stands on, and the composition root that wires the stages together.

Foundation (imports no stage): :mod:`.config`, :mod:`.errors`, the written contracts in
:mod:`.contracts` and the storage ports in :mod:`.ports`. The storage adapters that implement
the ports (Redis, Kafka, files) are in :mod:`.stores`. The composition root, which imports the
stages and which nothing imports, is :mod:`.cli` (the ``streamrec`` command, one module per
process role, and the demo) with :mod:`.local_stack` (the embedded broker and Redis).
The import-linter contracts in ``pyproject.toml`` enforce these layers.
"""
