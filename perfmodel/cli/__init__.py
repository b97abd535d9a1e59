"""The command-line interface: a typer app and one module per command (parse, call, render)."""

from perfmodel.cli.main import entry, main

__all__ = ["entry", "main"]
