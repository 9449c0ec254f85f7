"""On PYTHONPATH (with the repository), makes every Python process of a test misbehave on marked
emails: see tests/misbehaving.py."""

from tests.misbehaving import install

install()
