"""A byte range of a segment file that a Fetch answer sends with sendfile, never reading it into memory."""

from __future__ import annotations

import os
import weakref


class FileSlice:
    """``nbytes`` bytes of a segment file from ``position``, on a descriptor of its own.

    The descriptor is a duplicate of the segment's, so a roll, retention or
    topic deletion closing the segment between the read and the send can
    neither pull the file away nor hand its descriptor number to another
    file. Segment files are append-only and replaced rather than rewritten
    (the cleaner swaps in new files), so the bytes cannot change either.

    It stands where record bytes would in a response body: the protocol
    package sees ``nbytes`` and ``tobytes()``, as on a memoryview, and the
    connection sends it with ``os.sendfile``. Close it once sent; one that is
    dropped unsent closes its descriptor then.
    """

    __slots__ = ("_fd", "position", "nbytes", "_closer", "__weakref__")

    def __init__(self, fd: int, position: int, nbytes: int) -> None:
        self._fd = os.dup(fd)
        self.position = position
        self.nbytes = nbytes
        self._closer = weakref.finalize(self, os.close, self._fd)

    def fileno(self) -> int:
        return self._fd

    def __len__(self) -> int:
        return self.nbytes

    def tobytes(self) -> bytes:
        """The bytes themselves, for a caller that needs them in memory (tests, a joined response)."""
        return os.pread(self._fd, self.nbytes, self.position)

    def close(self) -> None:
        self._closer()

    def __repr__(self) -> str:
        return f"FileSlice(position={self.position}, nbytes={self.nbytes})"
