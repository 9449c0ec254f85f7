"""Compile the message catalogs when kb is built or installed (pip install ., pip install -e .).

Everything else about the package is in pyproject.toml. The .mo files are build output, not
source: they are never committed. A regular build writes them into the build folder; an editable
install (where setuptools runs build_py in "editable mode" and copies nothing) writes them beside
the .po files in the source tree, where the editable package finds them.
"""

import importlib.util
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "kb" / "translations"


def _compiling():
    """kb/i18n/compiling.py, loaded by path: kb's own dependencies are not installed yet."""
    spec = importlib.util.spec_from_file_location("kb_i18n_compiling", HERE / "kb" / "i18n" / "compiling.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class BuildWithCatalogs(build_py):
    """build_py that also compiles kb/translations/*/LC_MESSAGES/messages.po to .mo."""

    def run(self):
        """Compile the catalogs, then build as usual (which copies nothing in editable mode)."""
        target = SOURCE if self.editable_mode else Path(self.build_lib) / "kb" / "translations"
        for mo in _compiling().compile_all(SOURCE, target):
            self.announce(f"compiled {mo}", level=2)
        super().run()


setup(cmdclass={"build_py": BuildWithCatalogs})
