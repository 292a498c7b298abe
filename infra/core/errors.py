"""The errors that mean "the user or the operator can fix this".

Every stage raises :class:`StreamrecError` (or a subclass) for bad input, bad configuration or
an unreachable service. The command line prints its message as a single line and exits
non-zero; anything else escaping is a bug and keeps its traceback.
"""


class StreamrecError(Exception):
    """A problem the user can fix; the message names what was wrong and, where possible, how."""


class StoreUnavailable(StreamrecError):
    """A storage service (Redis, Kafka, the examples filesystem) did not answer or failed.

    The storage adapters translate every client library's exceptions into this one, so stage
    code decides what an outage means (retry, fall back, fail the batch) without knowing which
    service is behind a port.
    """


class UnknownContractVersion(StreamrecError):
    """Data written under a contract version this code does not know how to read."""

    def __init__(self, what: str, found: object, supported: int, fix: str) -> None:
        super().__init__(
            f"{what} is {found!r}, but this streamrec reads version {supported}; {fix}"
        )
