"""The package's front door: `import nasrec_torchrec` and building the `nasrec` parser (every
subcommand's help included) import no torch, torchrec or fbgemm_gpu; `load_model` imports
them when called."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHECK = """
import sys
import nasrec_torchrec
from nasrec_torchrec.cli import build_parser

assert callable(nasrec_torchrec.load_model) and nasrec_torchrec.__all__ == ["load_model"]
parser = build_parser()
parser.format_help()
for subparser in parser._subparsers._group_actions[0].choices.values():
    subparser.format_help()
parser.parse_args(["export", "--model", "run", "--output", "out", "--precision", "fp16"])
heavy = sorted(name for name in sys.modules
               if name.partition(".")[0] in ("torch", "torchrec", "fbgemm_gpu"))
assert not heavy, heavy
"""


def test_importing_the_package_and_building_the_parser_import_no_torch():
    result = subprocess.run([sys.executable, "-c", CHECK], cwd=ROOT, capture_output=True,
                            text=True, timeout=120, check=False,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
