"""Which log key an auditor trusts, and the latest checkpoint it signed.

An auditor checks the log against a note verifier key it holds, not one the log hands
it along with what it signs. The key comes from, in order: the command line (a key
written down when the log was set up, or published out of band); the state of a
monitor that pinned it on an earlier run; and only then the issuer's discovery
document, on first use. A key read from discovery is as good as the channel it came
over, which is why the monitor records it and every later run holds the log to it: a
log that changes its key is then noticed, not followed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from federation.auditor.remote import LogDiscovery
from federation.errors import InvalidRequest, LogVerificationFailed
from federation.transparency.checkpoints import Checkpoint, open_checkpoint
from federation.transparency.notes import NoteVerifier, parse_verifier_key

DISCOVERY = "the issuer's discovery document"


@dataclass(frozen=True)
class PinnedKey:
    """A log's note verifier key, as written (``name+id+base64``), parsed, and where it
    came from (a flag, a state file, or :data:`DISCOVERY`)."""

    text: str
    verifier: NoteVerifier
    source: str

    @property
    def from_discovery(self) -> bool:
        return self.source == DISCOVERY


def pin(
    given: str | None,
    *,
    flag: str,
    kept: str | None = None,
    kept_in: str = "the state file",
    discover: Callable[[], LogDiscovery],
) -> PinnedKey:
    """The key to trust: ``given`` (by ``flag``), else ``kept`` (in ``kept_in``), else
    the one ``discover`` reads from the issuer's discovery document.
    :class:`~federation.errors.InvalidRequest` for a key that is not one."""
    if given is not None:
        return PinnedKey(given.strip(), parse_verifier_key(given.strip()), flag)
    if kept is not None:
        return PinnedKey(kept, parse_verifier_key(kept), kept_in)
    found = discover()
    try:
        verifier = parse_verifier_key(found.verifier_key)
    except InvalidRequest as exc:  # the issuer's document is at fault, not the user
        raise LogVerificationFailed(
            f"{DISCOVERY} names a log key that is not a note verifier key"
        ) from exc
    if verifier.name != found.origin:
        raise LogVerificationFailed(
            f"{DISCOVERY} names a log key of {verifier.name} for the log {found.origin}"
        )
    return PinnedKey(found.verifier_key, verifier, DISCOVERY)


def open_latest(signed: str, key: PinnedKey) -> Checkpoint:
    """The checkpoint in ``signed``, once the pinned key's signature verified."""
    try:
        return open_checkpoint(signed, [key.verifier])
    except LogVerificationFailed as exc:
        raise LogVerificationFailed(
            f"the log's checkpoint does not verify with the log key from {key.source}: {exc.detail}"
        ) from None
