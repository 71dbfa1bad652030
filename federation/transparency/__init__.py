"""The transparency log's library: every issued token as a leaf of an append-only
Merkle tree whose signed head anyone holding the log's verifier key can check.

No I/O: the formats and the proofs only, in the standards existing tools read.

- :mod:`~federation.transparency.entries`: the canonical record of an issued token.
- :mod:`~federation.transparency.merkle`: RFC 9162 §2.1 hashing, tree heads, inclusion
  and consistency proofs from a :class:`HashReader`, and their verification.
- :mod:`~federation.transparency.tiles`: the C2SP ``tlog-tiles`` layout: tile and entry
  bundle paths, tile contents, which tiles are full.
- :mod:`~federation.transparency.notes`: C2SP ``signed-note`` with Ed25519 note keys.
- :mod:`~federation.transparency.checkpoints`: C2SP ``tlog-checkpoint`` tree heads.
- :mod:`~federation.transparency.cosignatures`: C2SP ``tlog-cosignature`` v1, a
  witness's timestamped Ed25519 cosignature on a checkpoint.

Every check that fails raises :class:`~federation.errors.LogVerificationFailed`.
"""

from __future__ import annotations

from federation.transparency.checkpoints import Checkpoint, open_checkpoint, sign_checkpoint
from federation.transparency.cosignatures import (
    Cosignature,
    Ed25519CosignatureSigner,
    Ed25519CosignatureVerifier,
    parse_witness_key,
    require_cosignature,
)
from federation.transparency.entries import LogEntry, token_sha256
from federation.transparency.merkle import (
    EMPTY_ROOT,
    Frontier,
    HashReader,
    MemoryHashes,
    Node,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_hash,
    tree_hash,
    verify_consistency,
    verify_inclusion,
)
from federation.transparency.notes import (
    Ed25519NoteSigner,
    Ed25519NoteVerifier,
    Note,
    NoteSignature,
    NoteSigner,
    NoteVerifier,
    open_note,
    parse_verifier_key,
    sign_note,
)
from federation.transparency.tiles import (
    TILE_WIDTH,
    EntryBundle,
    Tile,
    TileHashes,
    TileReader,
    bundles_for_size,
    decode_bundle,
    encode_bundle,
    new_bundles,
    new_tiles,
    parse_path,
    tile_data,
    tile_hashes,
    tiles_for_size,
)

__all__ = [
    "EMPTY_ROOT",
    "TILE_WIDTH",
    "Checkpoint",
    "Cosignature",
    "Ed25519CosignatureSigner",
    "Ed25519CosignatureVerifier",
    "Ed25519NoteSigner",
    "Ed25519NoteVerifier",
    "EntryBundle",
    "Frontier",
    "HashReader",
    "LogEntry",
    "MemoryHashes",
    "Node",
    "Note",
    "NoteSignature",
    "NoteSigner",
    "NoteVerifier",
    "Tile",
    "TileHashes",
    "TileReader",
    "bundles_for_size",
    "consistency_proof",
    "decode_bundle",
    "encode_bundle",
    "inclusion_proof",
    "leaf_hash",
    "new_bundles",
    "new_tiles",
    "node_hash",
    "open_checkpoint",
    "open_note",
    "parse_path",
    "parse_verifier_key",
    "parse_witness_key",
    "require_cosignature",
    "root_hash",
    "sign_checkpoint",
    "sign_note",
    "tile_data",
    "tile_hashes",
    "tiles_for_size",
    "token_sha256",
    "tree_hash",
    "verify_consistency",
    "verify_inclusion",
]
