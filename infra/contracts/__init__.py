"""The written, versioned contracts at which stages meet.

- :mod:`.events`: event schema v1, between app backends, ingestion and the feature job;
- :mod:`.feature_spec`: feature spec v1 and the examples manifest, between the feature job,
  training and serving;
- :mod:`.export_layout`: model export layout v1, between training and serving;
- ``recommend.proto``: the ranking API, between serving and app backends.

A reader that meets a version it does not know stops with :class:`~..errors.UnknownContractVersion`
rather than guessing. Nothing here imports a stage, TensorFlow or Spark.
"""
