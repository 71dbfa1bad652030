"""The transparency log's keys and static copy from the CLI: `init` makes the key and
prints its verifier key, `keys rotate-log-key` adds a key that signs beside the old one,
`keys retire-log-key` destroys one, and `publish --out` writes a log Go verifies."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from federation.transparency import open_checkpoint, parse_verifier_key
from tests.cli.helpers import (
    assert_error_line,
    home_env,
    invoke_federation,
    issue_over_http,
    serve_home,
)
from tests.support import World
from tests.transparency import golang


def verifier_key_in(output: str) -> str:
    line = next(line for line in output.splitlines() if line.startswith("transparency log:"))
    return line.rsplit(" ", 1)[1]


def test_init_makes_one_log_key_and_rotation_signs_with_both(tmp_path: Path) -> None:
    home = tmp_path / "issuer"
    env = home_env(home)
    first = invoke_federation(home, env, "init")
    assert first.returncode == 0, first.stderr
    pinned = verifier_key_in(first.stdout)
    again = invoke_federation(home, env, "init")
    assert verifier_key_in(again.stdout) == pinned  # kept, not remade
    key_file = home / "keys" / "log" / "ed25519-1.pem"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600

    rotated = invoke_federation(home, env, "keys", "rotate-log-key")
    assert rotated.returncode == 0, rotated.stderr
    newer = rotated.stdout.split(": ", 1)[1].strip()
    assert newer != pinned
    listed = json.loads(
        invoke_federation(home, env, "keys", "log-keys", "--output-format", "json").stdout
    )
    assert [item["verifier_key"] for item in listed["items"]] == [newer, pinned]

    with serve_home(home, env) as server:
        world = World.live(server)
        document = json.loads(world.request("GET", "/.well-known/openid-configuration").content)
        assert document["transparency_log"]["verifier_key"] == newer
        note = world.request("GET", "/log/checkpoint").text
    # both keys sign while both are live: a monitor pinned to either still verifies
    for key in (pinned, newer):
        open_checkpoint(note, [parse_verifier_key(key)])

    retired = invoke_federation(home, env, "keys", "retire-log-key", "1")
    assert retired.returncode == 0, retired.stderr
    assert not key_file.exists()
    last = invoke_federation(home, env, "keys", "retire-log-key", "2")
    assert "only live one" in assert_error_line(last, 1)
    missing = invoke_federation(home, env, "keys", "retire-log-key", "9")
    assert "no live log key 9" in assert_error_line(missing, 1)


def test_publish_writes_the_log_as_static_tiles_go_verifies(
    tmp_path: Path, go_verifier: Path
) -> None:
    home = tmp_path / "issuer"
    env = home_env(home)
    assert invoke_federation(home, env, "init").returncode == 0
    with serve_home(home, env) as server:
        world = World.live(server)
        agent = world.platform_agent()
        tokens = [issue_over_http(server, agent) for _ in range(3)]
    out = tmp_path / "site"
    published = invoke_federation(home, env, "publish", "--out", str(out))
    assert published.returncode == 0, published.stderr
    discovery = json.loads((out / ".well-known" / "openid-configuration").read_text())
    log = discovery["transparency_log"]
    checkpoint_text = (out / "log" / "checkpoint").read_text()
    verifier = parse_verifier_key(log["verifier_key"])
    checkpoint = open_checkpoint(checkpoint_text, [verifier], origin=log["origin"])
    assert checkpoint.size == len(tokens)
    assert (out / "log" / "tile" / "0" / "000.p" / "3").is_file()
    report = golang.verify(
        go_verifier,
        out / "log",
        {
            "verifier_key": log["verifier_key"],
            "key_name": log["origin"],
            "public_key": verifier.public_key,
            "checkpoints": [checkpoint_text],
            "inclusion": [],
            "consistency": [],
        },
    )
    assert report.failures == []
    assert report.entries == len(tokens)
