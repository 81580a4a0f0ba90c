"""The README's Python examples run as written, and its quick start is what CI runs."""

from pathlib import Path
import re

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def test_python_examples_run():
    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})


def test_quick_start_test_command_is_the_ci_command():
    quick_start = re.search(r"## Quick start.*?```bash\n(.*?)```", README, flags=re.S).group(1)
    commands = [line.split("#")[0].strip() for line in quick_start.strip().splitlines()]
    assert commands == ["./mmd-env dora run solver=compression/mmd", "./mmd-env pytest"]
    assert commands[1] in (REPO / ".ci" / "run").read_text().splitlines()
