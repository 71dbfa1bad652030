"""`federation init` says where it put each signing key: in the keys directory for the
`file` key store, in the database for the `database` one (and then nothing is written to
the keys directory). The entry point's ``main`` in process."""

from __future__ import annotations

import re
from pathlib import Path

from federation.keys.kek import new_kek
from federation.server.runtime import key_location
from federation.settings import load_settings
from tests.cli.helpers import home_env, invoke_federation

CREATED = re.compile(r"^signing key: created (ES256|RS256) (\S+) in (.+)$", re.MULTILINE)


def test_init_names_the_key_files_of_the_file_key_store(tmp_path: Path) -> None:
    env = home_env(tmp_path)
    done = invoke_federation(tmp_path, env, "init")
    assert done.returncode == 0, done.stderr
    created = CREATED.findall(done.stdout)
    assert sorted(alg for alg, _, _ in created) == ["ES256", "RS256"], done.stdout
    keys = Path(env["FEDERATION_KEYS_DIR"])
    for _, kid, where in created:
        assert where == f"file {keys / f'{kid}.pem'}"
        assert (keys / f"{kid}.pem").is_file()


def test_init_says_the_database_key_store_keeps_the_keys(tmp_path: Path) -> None:
    env = {**home_env(tmp_path), "FEDERATION_KEY_STORE": "database", "FEDERATION_KEK": new_kek()}
    done = invoke_federation(tmp_path, env, "init")
    assert done.returncode == 0, done.stderr
    created = CREATED.findall(done.stdout)
    assert sorted(alg for alg, _, _ in created) == ["ES256", "RS256"], done.stdout
    assert {where for _, _, where in created} == {"database (sealed with FEDERATION_KEK)"}
    keys = env["FEDERATION_KEYS_DIR"]
    assert keys not in done.stdout
    assert not Path(keys).exists()
    assert env["FEDERATION_KEK"] not in done.stdout + done.stderr


def test_serve_names_where_each_key_store_keeps_the_keys(tmp_path: Path) -> None:
    assert key_location(load_settings(keys_dir=tmp_path / "keys")) == f"{tmp_path / 'keys'}/"
    sealed = load_settings(key_store="database", kek=new_kek())
    assert key_location(sealed) == "the database, sealed with FEDERATION_KEK"
    kms = load_settings(key_store="aws-kms", kms_region="eu-west-1")
    assert key_location(kms) == "AWS KMS (eu-west-1)"
