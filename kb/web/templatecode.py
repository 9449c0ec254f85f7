"""Compiled templates kept on disk in INSTANCE_DIR, so a new worker loads its pages' code instead of compiling it.

Jinja compiles each template at a process's first use of it: some 40 ms of CPU for the
portal's search page and its layout, in every gunicorn worker after every start. Its bytecode
cache writes the compiled code once (a temporary file renamed into place, so processes can share
it) and checks the source's checksum and the Python version on every load. The folder is a
cache: deleting it loses nothing, and a folder or file that cannot be used only means compiling
as before, never a failed page.
"""

from __future__ import annotations

import logging
from pathlib import Path

from flask import Flask
from jinja2 import FileSystemBytecodeCache

FOLDER = "template-code"
log = logging.getLogger(__name__)


class TemplateCode(FileSystemBytecodeCache):
    """Jinja's file bytecode cache, which compiles afresh rather than fail when its files cannot be used."""

    def load_bytecode(self, bucket) -> None:
        """The compiled code of ``bucket``'s template if a usable file has it; else the bucket stays empty."""
        try:
            super().load_bytecode(bucket)
        except Exception:  # noqa: BLE001 - a damaged file: compile the template as if it were missing
            bucket.reset()
            log.warning("a compiled template in %s could not be read; compiling it again", self.directory,
                        exc_info=True)

    def dump_bytecode(self, bucket) -> None:
        """Write ``bucket``'s compiled code; a folder that cannot be written to is left alone."""
        try:
            super().dump_bytecode(bucket)
        except OSError as exc:
            log.warning("could not keep a compiled template in %s: %s", self.directory, exc)


def init_app(app: Flask) -> None:
    """Keep the app's compiled templates in INSTANCE_DIR/template-code (created if missing)."""
    folder = Path(app.instance_path) / FOLDER
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)  # code kb runs: its user's alone, as Jinja's own default
    except OSError as exc:
        log.warning("templates are compiled in every process: cannot create %s: %s", folder, exc)
        return
    app.jinja_env.bytecode_cache = TemplateCode(str(folder))
