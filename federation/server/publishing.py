"""Discovery and JWKS documents as files, for an issuer that is not reachable itself.

The clouds fetch ``<issuer>/.well-known/openid-configuration`` and its ``jwks_uri``.
When the issuer is private, serve copies of both from static hosting (S3, GCS, a CDN)
at the issuer URL. For GCP, a private issuer's JWKS can instead be uploaded to the
workload identity provider (``--jwk-json-path``); GCP accepts only the members
``kty, alg, use, kid, n, e, x, y, crv``, which are the only ones we publish.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from federation._internal.files import replace_public
from federation.api.routes.wellknown import discovery_document
from federation.clock import Clock
from federation.keys import Keyring
from federation.keys.log_keys import log_key_store
from federation.ledger import Ledger
from federation.settings import Settings
from federation.store import Store
from federation.store.log import LogRecords
from federation.transparency.tiles import EntryBundle, Tile, bundles_for_size, tiles_for_size


def write_static(
    out_dir: Path, settings: Settings, keyring: Keyring, log_key: str | None = None
) -> list[Path]:
    well_known = out_dir / ".well-known"
    documents = {
        well_known / "openid-configuration": orjson.dumps(discovery_document(settings, log_key)),
        well_known / "jwks.json": keyring.jwks().body,
    }
    for path, body in documents.items():
        replace_public(path, body)
    return list(documents)


def write_gcp_jwks(path: Path, keyring: Keyring) -> None:
    replace_public(path, keyring.jwks().body)


def write_log(out_dir: Path, settings: Settings, clock: Clock) -> tuple[str, list[Path]]:
    """The transparency log as static files under ``out_dir/log/``, in the C2SP
    tlog-tiles layout the issuer serves: a checkpoint signed now, then every tile and
    entry bundle of its tree (full ones already written are immutable: kept). The
    checkpoint is written last, so a reader never finds one whose tiles are missing.
    Answers the log's verifier key and the files written.

    The log names subjects and run ids: host it where only its auditors can read it,
    unless they are not sensitive."""
    store = Store.from_url(settings.database_url, create=False)
    try:
        store.check_schema()
        ledger = Ledger(
            LogRecords(store), log_key_store(settings, store), settings.checkpoint_origin, clock
        )
        latest = ledger.sign()
        root = out_dir / "log"
        written = []
        items: list[Tile | EntryBundle] = [
            *tiles_for_size(latest.size),
            *bundles_for_size(latest.size),
        ]
        for item in items:
            path = root / item.path
            if item.full and path.exists():
                continue
            replace_public(path, ledger.served(item.path).data)
            written.append(path)
        replace_public(root / "checkpoint", latest.note.encode("utf-8"))
        return ledger.verifier_key, [*written, root / "checkpoint"]
    finally:
        store.dispose()
