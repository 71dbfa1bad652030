"""Minting: the claims of a token whose checks have passed, and their signature.

The in-process half of issuing, with no store and no checks of who asks: the issuing
pipeline (``federation.issuing.pipeline``) calls it once every check has passed, and ``make
bench`` compares :meth:`Minter.mint` with a raw signature on the same key.

Everything about a token but its times and ``jti`` is the same for every token that a
run asks for with one template and audience, so it is worked out once (the subject, its
length check, the payload around the times, base64url-encoded) and kept for the last
few hundred such requests; see :class:`federation.domain.tokens.ClaimsShape`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from federation.clock import Clock, seconds
from federation.domain.durations import Grant
from federation.domain.subjects import SubjectContext, SubjectRenderer, check_length
from federation.domain.tokens import Claims, ClaimsShape, new_jti
from federation.keys import Keyring, jws
from federation.settings import Settings

SHAPES_KEPT = 512


@dataclass(frozen=True, init=False)
class Prepared:
    """Everything a token would hold, before it is signed: what a preview answers."""

    claims: Claims
    alg: str
    grant: Grant

    def __init__(self, claims: Claims, alg: str, grant: Grant) -> None:
        # NOTE: written out, as Claims.__init__: once a token, object.__setattr__ costs.
        fields = self.__dict__
        fields["claims"] = claims
        fields["alg"] = alg
        fields["grant"] = grant

    @property
    def header(self) -> dict[str, str]:
        """The protected header, but for the ``kid``, which only signing picks."""
        return {"alg": self.alg, "typ": "JWT"}


@dataclass(frozen=True, init=False)
class IssuedToken:
    """A signed token with the claims in it and the key that signed it."""

    token: str
    claims: Claims
    kid: str
    alg: str
    grant: Grant

    def __init__(self, token: str, claims: Claims, kid: str, alg: str, grant: Grant) -> None:
        fields = self.__dict__
        fields["token"] = token
        fields["claims"] = claims
        fields["kid"] = kid
        fields["alg"] = alg
        fields["grant"] = grant

    @property
    def issued_at(self) -> datetime:
        return datetime.fromtimestamp(self.claims.issued_at, UTC)

    @property
    def expires_at(self) -> datetime:
        return datetime.fromtimestamp(self.claims.expires_at, UTC)


class Minter:
    """Claims and signatures for one issuer URL, keyring and clock."""

    def __init__(
        self,
        *,
        issuer: str,
        keyring: Keyring,
        clock: Clock,
        renderer: SubjectRenderer,
        default_alg: str = "ES256",
        audience_as_array: bool = True,
        clock_skew: int = 5,
    ) -> None:
        self.issuer = issuer
        self.keyring = keyring
        self.clock = clock
        self.renderer = renderer
        self.default_alg = default_alg
        self.audience_as_array = audience_as_array
        self.clock_skew = clock_skew
        self._seconds = seconds(clock)
        self._shapes = functools.lru_cache(maxsize=SHAPES_KEPT)(self._shape)

    @classmethod
    def from_settings(cls, settings: Settings, keyring: Keyring, clock: Clock) -> Minter:
        return cls(
            issuer=settings.issuer,
            keyring=keyring,
            clock=clock,
            renderer=SubjectRenderer(settings.subject_separator),
            default_alg=settings.signing_alg,
            audience_as_array=settings.audience_format == "array",
            clock_skew=settings.clock_skew,
        )

    def claims(
        self,
        context: SubjectContext,
        template: Sequence[str],
        audience: str,
        grant: Grant,
        tags: dict[str, str] | None,
    ) -> Claims:
        """The claims for a run whose checks have passed: the subject rendered from
        ``template``, the times from the clock, a new ``jti``."""
        # NOTE: the context's fields, not the context: hashing them costs a third of
        # hashing the frozen dataclass, whose __hash__ is Python.
        shape = self._shapes(
            tuple(template),
            audience,
            None if tags is None else tuple(tags.items()),
            context.principal_type,
            context.principal_uid,
            context.run_id,
            context.email,
            context.team,
            context.environment,
            context.agent_name,
            context.skill_spec,
            context.host,
        )
        # NOTE: iat/nbf a few seconds in the past: GCP requires iat to be in the past,
        # and a verifier whose clock runs slightly behind ours must not see a future token.
        issued_at = int(self._seconds()) - self.clock_skew
        return shape.claims(issued_at, issued_at + grant.seconds, new_jti())

    def sign(self, prepared: Prepared) -> IssuedToken:
        """Sign prepared claims with the algorithm's active key."""
        claims = prepared.claims
        signer, header = self.keyring.signer_at(prepared.alg, self._seconds())
        token = jws.compact(header, claims.payload(), signer)
        return IssuedToken(token, claims, signer.kid, prepared.alg, prepared.grant)

    def mint(
        self,
        context: SubjectContext,
        template: Sequence[str],
        audience: str,
        grant: Grant,
        *,
        alg: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> IssuedToken:
        """Claims and signature for a run already checked: what ``make bench`` compares
        with a raw signature on the same key."""
        claims = self.claims(context, template, audience, grant, tags)
        return self.sign(Prepared(claims, alg or self.default_alg, grant))

    def _shape(
        self,
        template: tuple[str, ...],
        audience: str,
        tags: tuple[tuple[str, str], ...] | None,
        principal_type: str,
        principal_uid: str,
        run_id: str,
        email: str | None,
        team: str | None,
        environment: str | None,
        agent_name: str | None,
        skill_spec: str | None,
        host: str | None,
    ) -> ClaimsShape:
        """What every token for a context (given field by field) with ``template`` and
        ``audience`` shares. A refusal (a missing value, a subject too long) raises, and
        is not kept."""
        context = SubjectContext(
            principal_type=principal_type,
            principal_uid=principal_uid,
            run_id=run_id,
            email=email,
            team=team,
            environment=environment,
            agent_name=agent_name,
            skill_spec=skill_spec,
            host=host,
        )
        subject = self.renderer.render(template, context)
        check_length(subject, audience)
        return ClaimsShape(
            Claims(
                issuer=self.issuer,
                subject=subject,
                audience=audience,
                issued_at=0,
                expires_at=0,
                jti="",
                email=email,
                team=team,
                run_id=run_id,
                environment=environment,
                agent_name=agent_name,
                skill_spec=skill_spec,
                host=host,
                audience_as_array=self.audience_as_array,
                aws_tags=None if tags is None else dict(tags),
            )
        )
