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
from federation.keys import Keyring
from federation.settings import Settings


def write_static(out_dir: Path, settings: Settings, keyring: Keyring) -> list[Path]:
    well_known = out_dir / ".well-known"
    documents = {
        well_known / "openid-configuration": orjson.dumps(discovery_document(settings)),
        well_known / "jwks.json": keyring.jwks().body,
    }
    for path, body in documents.items():
        replace_public(path, body)
    return list(documents)


def write_gcp_jwks(path: Path, keyring: Keyring) -> None:
    replace_public(path, keyring.jwks().body)
