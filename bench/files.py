"""Writing a file without harming what is at its path.

A regular file (or a new path) is replaced atomically: a fsynced temporary beside it, renamed
over it, so a reader sees the old file or all of the new one. Anything else is written into,
never replaced: a character device (``/dev/null``, a terminal), a FIFO or a socket is opened
and written like a shell redirection would, and a symlink is followed, so its target gets the
text and the link stays. (Renaming over ``/dev/null`` as root would replace the machine's null
device with a regular file.) New files follow the umask, as an ordinary write does."""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomically(target: str | Path, text: str, *, prefix: str | None = None,
                     suffix: str = ".tmp", newline: str | None = None) -> None:
    """``text`` into the regular file (or new path) ``target`` through a fsynced temporary in
    its folder (``prefix``, default ``.<name>.``) and a rename; the file's mode follows the
    umask. ``newline=""`` keeps the text's own line ends. Raises OSError."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=prefix or f".{target.name}.",
                               suffix=suffix)
    try:
        os.chmod(fd, 0o666 & ~_umask())  # as an ordinary write would (mkstemp makes it 0600)
        with os.fdopen(fd, "w", newline=newline) as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_output(path: str | Path, text: str, newline: str | None = "") -> Path:
    """Write ``text`` to ``path`` as a user means it: a regular file or a new path atomically
    (:func:`write_atomically`), a symlink's target (resolved; the link stays), a device, FIFO
    or socket straight into it. Returns the path written. Raises OSError (IsADirectoryError
    for a directory)."""
    target = Path(os.path.realpath(path)) if Path(path).is_symlink() else Path(path)
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None and stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, "Is a directory", str(path))
    if mode is not None and not stat.S_ISREG(mode):
        with open(target, "w", newline=newline) as f:  # a device or FIFO: never replaced
            f.write(text)
        return target
    write_atomically(target, text, newline=newline)
    return target
