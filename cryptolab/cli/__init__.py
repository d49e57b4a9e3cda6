"""The ``cryptolab`` command: :mod:`cryptolab.cli.main` parses, :mod:`cryptolab.cli.commands`
calls the library, :mod:`cryptolab.cli.render` prints tables."""

from cryptolab.cli.main import main

__all__ = ["main"]
