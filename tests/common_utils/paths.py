"""Where things are: the repository root, and the tests' data files."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ASSETS = REPO / "tests" / "assets"
