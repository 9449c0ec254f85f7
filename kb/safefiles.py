"""Reading and writing files inside one folder without being led out of it.

`kb import` and `kb export` work on folders that other people and programs may have written to.
A symbolic link can point anywhere (a file or folder outside, itself), and a FIFO or a device
blocks or misbehaves when opened. So a link that stays inside the folder is read through, but a
link that leaves it, a broken link and a loop are refused; only regular files are read or
replaced; and a file is written by renaming a new file over its name, so an existing link is
replaced, never written through. Each refusal names the file and says why; the rest go on.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from pathlib import Path

from kb.errors import KBError

# What a path that is not a regular file is, in words, by the stat test that recognises it.
KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
         (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


class UnsafePath(KBError):
    """A path kb will not read or write: a link out of the folder, a loop, or not a regular file."""


class BrokenLink(UnsafePath):
    """A link to nothing: nothing to read, but harmless to replace when it points inside the folder."""


def _kind(mode: int) -> str:
    """What a non-regular file is, in words."""
    return next((name for test, name in KINDS if test(mode)), "not a regular file")


def _link_target(path: Path, root: Path) -> Path:
    """Where the link ``path`` leads, if that is inside ``root``; UnsafePath otherwise."""
    try:
        target = path.resolve(strict=True)
    except RuntimeError:  # Python 3.11 reports a loop this way
        raise UnsafePath("a link loop: it never reaches a file") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafePath("a link loop: it never reaches a file") from None
        raise BrokenLink(f"a broken link to {os.readlink(path)}") from None
    if not target.is_relative_to(root):
        raise UnsafePath(f"a link to {target}, outside {root}: kb does not follow links out of the folder")
    return target


def _regular(path: Path, root: Path) -> Path:
    """The regular file ``path`` stands for (through a link inside ``root``); UnsafePath otherwise."""
    target = _link_target(path, root) if path.is_symlink() else path
    mode = target.stat().st_mode
    if not stat.S_ISREG(mode):
        raise UnsafePath(f"{_kind(mode)}, not a regular file")
    return target


def find_files(root: Path, suffix: str) -> tuple[list[Path], list[tuple[str, str]]]:
    """The regular ``suffix`` files under ``root``, sorted, and the paths refused, each with its reason.

    Linked folders are not entered: one inside ``root`` is read where it really is, one outside
    is reported. A file reached twice (through a link inside the folder) is read once.
    """
    root = root.resolve()
    found: dict[Path, Path] = {}
    refused: list[tuple[str, str]] = []
    for folder, dirnames, filenames in os.walk(root, onerror=lambda exc: refused.append(
            (str(exc.filename), f"cannot be read: {exc.strerror}"))):
        for name in sorted(dirnames):
            path = Path(folder, name)
            if path.is_symlink():
                try:
                    _link_target(path, root)
                except UnsafePath as exc:
                    refused.append((str(path), str(exc)))
        for name in filenames:
            path = Path(folder, name)
            if not name.endswith(suffix):
                continue
            try:
                found.setdefault(_regular(path, root), path)
            except UnsafePath as exc:
                refused.append((str(path), str(exc)))
    return sorted(found), sorted(refused)


def read_regular(path: Path) -> bytes:
    """The bytes of a regular file; UnsafePath if it turned into a link or something else meanwhile."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK  # a FIFO swapped in cannot block the import
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # O_NOFOLLOW met a link
            raise UnsafePath("a link now (it changed while kb was reading the folder)") from None
        raise
    with os.fdopen(fd, "rb") as handle:
        mode = os.fstat(handle.fileno()).st_mode
        if not stat.S_ISREG(mode):
            raise UnsafePath(f"{_kind(mode)}, not a regular file")
        return handle.read()


def check_writable(path: Path, root: Path) -> None:
    """Refuse to replace ``path`` if it is a link out of ``root`` (or a loop) or not a regular file."""
    if path.is_symlink():
        try:
            _link_target(path, root)
        except BrokenLink:
            if not Path(os.path.realpath(path)).is_relative_to(root):
                raise UnsafePath(f"a link to {os.readlink(path)}, outside {root}: "
                                 "kb does not write through links out of the folder") from None
        return  # a link inside the folder is replaced by the new file, never written through
    if path.exists() and not stat.S_ISREG(mode := path.stat().st_mode):
        raise UnsafePath(f"{_kind(mode)}: kb only replaces regular files")


def write_inside(root: Path, name: str, data: bytes) -> Path:
    """Write ``root/name`` by renaming a new file over it; UnsafePath when check_writable refuses."""
    root = root.resolve()
    target = root / name
    check_writable(target, root)
    temporary = root / f".{name}.{secrets.token_hex(4)}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return target
