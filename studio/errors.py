"""One exception type for everything a user can fix.

The UI shows ``str(err)`` in an error panel and the CLI prints it on one line and exits 2,
so messages are written for the person at the browser: what is wrong, then what to do.
"""


class StudioError(Exception):
    """A problem with the user's input or settings (never a bug): the message says what to do."""
