"""The `failover` command and everything only it uses: serve, check, explain, status, simulate
and demo. These are applications of the library; nothing outside this package imports it."""

from .group import main

__all__ = ["main"]
