"""optreg's builtin plugins.

Each module here is a pluggy hook plugin declared in optreg's own
``pyproject.toml`` (entry-point group ``optreg``), exactly like a third-party
plugin; block one with ``OPTREG_BLOCK_PLUGINS=optreg:<entry-point name>``.
"""
