"""Index files read in place from the segment's memory map, never copied into each process.

whoosh3 3.54.0 opens every member of a segment's compound file (terms, postings, columns) as a
``BufferFile`` over a memoryview of the segment's mmap, and ``BufferFile`` copies the whole member
into a ``BytesIO`` for its stream reads (seek, read, pickle). So every reader of every worker held
a private copy of the index: at 100,000 articles 510 MB more per process (maxrss 851 -> 344 MB)
and 130 ms to open a reader (a worker's first typo query 293 -> 162 ms). ``MappedFile`` reads
the same memoryview through ``ViewStream``: the pages stay the kernel's, shared by every worker.

Private to the pinned codec (as kb.search.termwise): ``install`` replaces the one name
``whoosh.filedb.compound`` looks up, and leaves any other Whoosh as it is.
"""

from __future__ import annotations

import whoosh
from whoosh.filedb import compound
from whoosh.filedb.structfile import BufferFile

PINNED = (3, 54, 0)  # the whoosh3 release whose BufferFile this replaces (pyproject.toml pins it)
# pickle's loader asks to peek at 128 KB before each object and reads on when it gets less: a
# copy that large per load made an article page 3 % slower; Whoosh's pickles are far smaller.
PEEK_MOST = 1024
LINE_PIECE = 4096  # bytes a readline copies at a time while it looks for the newline


class ViewStream:
    """A read-only binary stream over a memoryview, as ``io.BytesIO`` but without copying it."""

    def __init__(self, view):
        self._view, self._pos, self.closed = view, 0, False

    def read(self, size: int | None = -1) -> bytes:
        """Up to ``size`` bytes from the position (all that is left when negative or None)."""
        start, end = self._pos, len(self._view)
        if size is not None and size >= 0:
            end = min(start + size, end)
        if end <= start:
            return b""
        self._pos = end
        return self._view[start:end].tobytes()

    def readinto(self, buffer) -> int:
        """Fill ``buffer`` from the position; how many bytes were read."""
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def readline(self, size: int | None = -1) -> bytes:
        """The bytes up to and including the next newline (or ``size`` bytes, or the end)."""
        at, end = self._pos, len(self._view)
        if size is not None and size >= 0:
            end = min(at + size, end)
        parts = []
        while at < end:  # a piece at a time: a line is short, the rest of a member may be megabytes
            chunk = self._view[at:min(at + LINE_PIECE, end)].tobytes()
            cut = chunk.find(b"\n")
            if cut >= 0:
                parts.append(chunk[:cut + 1])
                at += cut + 1
                break
            parts.append(chunk)
            at += len(chunk)
        self._pos = at
        return b"".join(parts)

    def peek(self, size: int = 0) -> bytes:
        """Up to PEEK_MOST bytes from the position without moving it (pickle reads ahead with it)."""
        start = self._pos
        return self._view[start:start + min(max(size, 1), PEEK_MOST)].tobytes()

    def seek(self, offset: int, whence: int = 0) -> int:
        """Move the position as ``io.BytesIO.seek`` does; the new position."""
        base = {0: 0, 1: self._pos, 2: len(self._view)}[whence]
        if base + offset < 0:
            raise ValueError(f"negative seek position {base + offset}")
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        """The position."""
        return self._pos

    def __iter__(self):
        """The lines, as a file's."""
        return iter(self.readline, b"")

    def close(self) -> None:
        """Let go of the view (the segment's map closes once nothing refers to it)."""
        self._view, self.closed = memoryview(b""), True


class MappedFile(BufferFile):
    """A compound member file whose stream reads come straight from the segment's memory map."""

    def __init__(self, buf, name: str | None = None, onclose=None):
        BufferFile.__init__(self, b"", name=name, onclose=onclose)  # an empty BytesIO: nothing copied
        self._buf = buf
        self.file = ViewStream(buf)
        # Whoosh calls these per posting block: the stream's own methods save a call each.
        self.read, self.seek, self.tell = self.file.read, self.file.seek, self.file.tell


def install() -> bool:
    """Make the pinned whoosh3's compound files read in place; whether it is now so."""
    if compound.BufferFile is MappedFile:
        return True
    if tuple(getattr(whoosh, "__version__", ())[:3]) != PINNED or compound.BufferFile is not BufferFile:
        return False  # another Whoosh: its own way, copies and all
    compound.BufferFile = MappedFile
    return True
