"""Storage ports: the narrow interfaces through which stages reach Redis, Kafka and files.

Each port is a :class:`typing.Protocol`; :mod:`streamrec.infra.storage` holds the
implementations and opens the one a config section's ``type`` names. Stage code sees only these
protocols and a single error, :class:`~streamrec.infra.core.errors.StoreUnavailable`.
"""
