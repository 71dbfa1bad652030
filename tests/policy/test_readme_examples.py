"""The README's worked examples of `policy test`, run on ``examples/policy``: each command
shown answers the decision and reason the README prints under it."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

from tests.support import federation_command

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "policy"


def worked_examples() -> list[tuple[list[str], str]]:
    """(arguments, first answer line) for every `federation policy test` in the README's
    IAM policy testing section, with its `M=...` variable substituted."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## IAM policy testing", 1)[1].split("\n## ", 1)[0]
    lines = section.splitlines()
    variables: dict[str, str] = {}
    found = []
    index = 0
    while index < len(lines):
        line = lines[index]
        name, equals, value = line.partition("=")
        if equals and name.isidentifier() and name.isupper():
            variables[name] = value
        if line.startswith("federation policy test "):
            command = line
            while command.endswith("\\"):
                index += 1
                command = command[:-1] + lines[index].strip()
            for name, value in variables.items():
                command = command.replace(f"${name}", value)
            found.append((shlex.split(command)[1:], lines[index + 1]))
        index += 1
    return found


EXAMPLES_SHOWN = worked_examples()


def test_each_cloud_has_an_allow_and_a_deny_example() -> None:
    for cloud in ("aws", "gcp", "azure"):
        answers = [answer for args, answer in EXAMPLES_SHOWN if args[2] == cloud]
        assert [answer.split(":")[0] for answer in answers] == ["ALLOW", "DENY"], cloud


@pytest.mark.parametrize(("args", "answer"), EXAMPLES_SHOWN, ids=lambda value: str(value)[:40])
def test_the_readme_shows_what_the_command_answers(args: list[str], answer: str) -> None:
    result = subprocess.run(
        federation_command(*args),
        cwd=EXAMPLES,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == (0 if answer.startswith("ALLOW") else 1), result.stderr
    assert result.stdout.splitlines()[0] == answer
