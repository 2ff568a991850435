"""The `nasrec` commands: one module per command, each defining `add_arguments(parser)`,
`run(args) -> int` and a module docstring whose first line is its one-line help."""

from __future__ import annotations

import argparse
import importlib


def add_command_parsers(subparsers: "argparse._SubParsersAction", modules: dict[str, str],
                        prefix: str = "") -> None:
    """One subparser per `name -> module` of `modules` (modules of this package), each with
    the `_module`, `_parser` and `_command` (`prefix` + name) that `cli.main` runs and names
    errors with."""
    for name, module_name in modules.items():
        module = importlib.import_module(f"nasrec_torchrec.commands.{module_name}")
        doc = (module.__doc__ or "").strip()
        sub = subparsers.add_parser(
            name, help=doc.splitlines()[0] if doc else None, description=doc,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            allow_abbrev=False,  # `--epoch 2` is an error, not a silent `--epochs 2`
        )
        module.add_arguments(sub)
        sub.set_defaults(_module=module, _parser=sub, _command=f"{prefix}{name}")
