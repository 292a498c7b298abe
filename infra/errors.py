"""The one exception type that means "the user can fix this".

Every stage raises :class:`StreamrecError` for bad input, bad configuration or an unreachable
service. The command line prints its message as a single line and exits non-zero; anything
else escaping is a bug and keeps its traceback.
"""


class StreamrecError(Exception):
    """A problem the user can fix; the message names what was wrong and, where possible, how."""
