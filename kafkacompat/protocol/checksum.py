"""CRC-32C, loaded on first use.

Importing the ``crc32c`` package costs ~30 ms (it reads its own installed
metadata), which a broker answering its first Metadata request need not pay.
Use it as ``checksum.crc32c(data)``: after the first call the name is the
package's own function, with no wrapper in between.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name != "crc32c":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from crc32c import crc32c

    globals()["crc32c"] = crc32c
    return crc32c
