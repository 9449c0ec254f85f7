"""The matcher's stems come from PyStemmer (snowballstemmer's C engine), and they are the pure-Python ones."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
import snowballstemmer

from kb.autoreply import textproc

ARTICLES = Path(__file__).resolve().parent.parent / "articles"


def test_snowballstemmer_runs_on_pystemmer():
    import Stemmer

    assert snowballstemmer.stemmer is Stemmer.Stemmer  # a missing install would stem 20x slower


@pytest.mark.parametrize("name", sorted(set(textproc.STEMMER_NAMES.values())))
def test_the_c_stems_are_the_pure_python_ones(name):
    words = sorted({w for path in ARTICLES.glob("*.md") for w in re.findall(r"[^\W\d_]+", path.read_text().lower())})
    words += ["running", "happiness", "generously", "betalingene", "kjøpene", "devoluções", "informações", "cafés"]
    module = importlib.import_module(f"snowballstemmer.{name}_stemmer")
    pure = getattr(module, f"{name.capitalize()}Stemmer")()
    c = snowballstemmer.stemmer(name)
    assert len(words) > 500
    assert [c.stemWord(w) for w in words] == [pure.stemWord(w) for w in words]
