import errno
import shutil

"""One exception type for everything a user can fix.

The UI shows ``str(err)`` in an error panel and the CLI prints it on one line and exits 2,
so messages are written for the person at the browser: what is wrong, then what to do.
"""


class StudioError(Exception):
    """A problem with the user's input or settings (never a bug): the message says what to do."""


def is_disk_full(exc: BaseException, path=None) -> bool:
    """ENOSPC from Python or from the Rust writer (safetensors); torch.save only says "file write failed", so when a
    ``path`` is given, a write failure there with (almost) no free space left counts too."""

    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(exc)
    if any(s in text for s in ("No space left on device", "StorageFull", "os error 28", "Disk quota exceeded")):
        return True
    if path is not None and ("write failed" in text or isinstance(exc, OSError)):
        try:
            return shutil.disk_usage(path).free < 1 << 20
        except OSError:
            return False
    return False
