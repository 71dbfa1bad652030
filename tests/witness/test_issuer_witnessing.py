"""An issuer with a witness: each new checkpoint is pushed to the witness, its
cosignature is kept with the checkpoint, and `verify --require-logged --witness KEY`
passes only with that witness's key."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from federation.auditor.witness import Witness, witness_app
from federation.auditor.witness_state import WitnessState
from federation.clock import SystemClock
from federation.keys.log_keys import FileLogKeys
from federation.stand_ins.serving import serve
from federation.transparency import Checkpoint
from federation.transparency.cosignatures import Ed25519CosignatureSigner, cosignatures
from federation.transparency.notes import open_note
from tests.auditor.live import AWS, WAIT, cli
from tests.cli.helpers import assert_error_line, issue_over_http
from tests.support import World, bearer, free_port, serve_issuer

pytestmark = pytest.mark.integration


def witness_signer(seed: bytes) -> Ed25519CosignatureSigner:
    secret = hashlib.sha256(seed).digest()
    return Ed25519CosignatureSigner(
        "witness.example.test/w1", Ed25519PrivateKey.from_private_bytes(secret), SystemClock()
    )


def test_checkpoints_carry_the_witness_cosignature(tmp_path: Path) -> None:
    port = free_port()
    home = tmp_path / "issuer"
    origin = f"127.0.0.1:{port}/log"
    log_key = FileLogKeys(home / "keys").create(datetime.now(UTC)).signer(origin)
    witness_key = witness_signer(b"the team's witness")
    state = WitnessState.open(tmp_path / "witness" / "state.json")
    try:
        witness = Witness(witness_key, [log_key.verifier], state)
        with serve(witness_app(witness), timeout=10.0) as witness_url:
            witnesses = ((witness_url, witness_key.verifier.verifier_key),)
            with serve_issuer(home, port=port, log_witnesses=witnesses) as server:
                world = World.live(server)
                world.principal("auditor", type="service_account", email=None)
                audit_key = world.api_key("auditor", scopes=("audit",))
                agent = world.platform_agent()
                token = issue_over_http(server, agent)["token"]
                note = cosigned_checkpoint(server.url, audit_key, size=1)

                opened = open_note(note, [log_key.verifier, witness_key.verifier])
                assert len(cosignatures(opened, [witness_key.verifier])) == 1
                required = cli(
                    server, audit_key, "verify", token, "--audience", AWS, "--require-logged",
                    "--log-key", log_key.verifier.verifier_key, "--log-wait", WAIT,
                    "--witness", witness_key.verifier.verifier_key,
                )  # fmt: skip
                stranger = witness_signer(b"another witness").verifier.verifier_key
                refused = cli(
                    server, audit_key, "verify", token, "--audience", AWS, "--require-logged",
                    "--log-key", log_key.verifier.verifier_key, "--witness", stranger,
                )  # fmt: skip
    finally:
        state.close()
    assert required.returncode == 0, required.stderr
    assert "witness" in assert_error_line(refused, 1)


def cosigned_checkpoint(url: str, key: str, *, size: int) -> str:
    """The served checkpoint once it covers ``size`` entries and carries a cosignature
    (pushed about once a second)."""
    deadline = time.monotonic() + 15
    while True:
        note = httpx.get(f"{url}/log/checkpoint", headers=bearer(key), timeout=10).text
        text, _, signatures = note.partition("\n\n")
        if Checkpoint.parse(text + "\n").size >= size and signatures.count("\n") >= 2:
            return note
        assert time.monotonic() < deadline, f"no cosigned checkpoint of {size} in 15 s:\n{note}"
        time.sleep(0.1)


def test_the_witness_setting_names_url_and_key(tmp_path: Path) -> None:
    from federation.errors import ConfigurationError
    from tests.conftest import make_settings

    key = witness_signer(b"w").verifier.verifier_key
    parsed = make_settings(
        tmp_path, log_witnesses=f"http://127.0.0.1:7380/ {key}, https://w.example {key}"
    )
    assert parsed.log_witnesses == (("http://127.0.0.1:7380", key), ("https://w.example", key))
    # base64 holds "+" too: the key is name+id+base64, whatever follows the second "+"
    plus = "w.example/x+1a2b3c4d+BM2X+7akWuUKbD+fId+7J/KVvXm35t1buxhlGirgBNuI="
    assert make_settings(tmp_path, log_witnesses=f"https://w.example {plus}").log_witnesses == (
        ("https://w.example", plus),
    )
    for bad in ("127.0.0.1:7380 " + key, "http://w.example", f"http://w.example {key} extra"):
        with pytest.raises(ConfigurationError, match="verifier key"):
            make_settings(tmp_path, log_witnesses=bad)
