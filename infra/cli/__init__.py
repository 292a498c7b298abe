"""The composition root: the ``streamrec`` command, one module per process role, and the demo."""
