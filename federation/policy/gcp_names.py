"""GCP names: a workload identity pool provider's resource name, the audiences it
accepts by default, and the principal identifiers IAM bindings use for its identities.

    projects/<number>/locations/global/workloadIdentityPools/<pool>/providers/<id>
    principal://iam.googleapis.com/projects/<number>/locations/global/workloadIdentityPools/<pool>/subject/<google.subject>
    principalSet://iam.googleapis.com/projects/<number>/.../workloadIdentityPools/<pool>/group/<group>
    principalSet://iam.googleapis.com/projects/<number>/.../workloadIdentityPools/<pool>/attribute.<name>/<value>
    principalSet://iam.googleapis.com/projects/<number>/.../workloadIdentityPools/<pool>/*
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

IAM_PREFIXES = ("//iam.googleapis.com/", "https://iam.googleapis.com/")
_PROVIDER = re.compile(
    r"projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"
    r"/workloadIdentityPools/(?P<pool>[^/]+)/providers/(?P<provider>[^/]+)"
)
_MEMBER = re.compile(
    r"(?P<scheme>principal|principalSet)://iam\.googleapis\.com/projects/(?P<project>[^/]+)"
    r"/locations/(?P<location>[^/]+)/workloadIdentityPools/(?P<pool>[^/]+)/(?P<rest>.*)",
    re.DOTALL,
)
_ATTRIBUTE_NAME = re.compile(r"[a-z0-9_]{1,100}")
# Pool and provider IDs: 4-32 characters of [a-z0-9-]; the prefix gcp- is Google's.
_ID = re.compile(r"[a-z0-9-]{4,32}")
RESERVED_PREFIX = "gcp-"
PROVIDER_FORM = (
    "projects/<project number>/locations/global/workloadIdentityPools/<pool>/providers/<id>"
)
MEMBER_FORMS = (
    "principal://iam.googleapis.com/projects/<project number>/locations/global/"
    "workloadIdentityPools/<pool>/subject/<google.subject>, or principalSet://... ending "
    "in /group/<group>, /attribute.<name>/<value> or /*"
)


def is_project_number(project: str) -> bool:
    return project.isascii() and project.isdigit()


def id_problem(kind: str, value: str) -> str | None:
    """Why GCP would refuse ``value`` as a pool or provider ID (``kind``), or None."""
    if not _ID.fullmatch(value):
        return (
            f"the {kind} ID {value!r} must be 4 to 32 characters of lowercase letters, "
            "digits and hyphens"
        )
    if value.startswith(RESERVED_PREFIX):
        return f"the {kind} ID {value!r} starts with {RESERVED_PREFIX}, which Google reserves"
    return None


@dataclass(frozen=True)
class ProviderName:
    """The parts of a provider's resource name."""

    project: str
    location: str
    pool: str
    provider: str

    @classmethod
    def parse(cls, text: object) -> ProviderName:
        """``projects/...``, with or without ``//iam.googleapis.com/`` or
        ``https://iam.googleapis.com/`` before it; :class:`ValueError` otherwise."""
        if not isinstance(text, str):
            raise ValueError(f"a provider name is a string of the form {PROVIDER_FORM}")
        bare = text
        for prefix in IAM_PREFIXES:
            bare = bare.removeprefix(prefix)
        found = _PROVIDER.fullmatch(bare)
        if found is None:
            raise ValueError(f"{text!r} is not a provider name of the form {PROVIDER_FORM}")
        return cls(found["project"], found["location"], found["pool"], found["provider"])

    @property
    def pool_path(self) -> str:
        return (
            f"projects/{self.project}/locations/{self.location}/workloadIdentityPools/{self.pool}"
        )

    def id_problem(self) -> str | None:
        """Why GCP would refuse the pool or provider ID of this name, or None (parsing
        accepts any ID, so that a name can be read to say what is wrong with it)."""
        return id_problem("pool", self.pool) or id_problem("provider", self.provider)

    @property
    def resource(self) -> str:
        return f"{self.pool_path}/providers/{self.provider}"

    @property
    def default_audiences(self) -> tuple[str, str]:
        """What an empty ``allowedAudiences`` accepts: the full canonical resource name,
        with or without the HTTPS prefix."""
        return (IAM_PREFIXES[0] + self.resource, IAM_PREFIXES[1] + self.resource)

    def subject_member(self, subject: str) -> str:
        return f"principal://iam.googleapis.com/{self.pool_path}/subject/{subject}"


class MemberKind(StrEnum):
    SUBJECT = "subject"
    GROUP = "group"
    ATTRIBUTE = "attribute"
    ALL = "all"


@dataclass(frozen=True)
class Member:
    """A principal identifier of a workload identity pool, as an IAM binding names it."""

    kind: MemberKind
    project: str
    location: str
    pool: str
    name: str = ""  # the custom attribute's name, for ATTRIBUTE
    value: str = ""  # the subject, group or attribute value

    @classmethod
    def parse(cls, text: str) -> Member:
        found = _MEMBER.fullmatch(text)
        if found is None:
            raise ValueError(f"{text!r} is not a workload identity pool principal: {MEMBER_FORMS}")
        place = (found["project"], found["location"], found["pool"])
        scheme, rest = found["scheme"], found["rest"]
        head, slash, value = rest.partition("/")
        if scheme == "principal":
            if head == "subject" and slash and value:
                return cls(MemberKind.SUBJECT, *place, value=value)
        elif rest == "*":
            return cls(MemberKind.ALL, *place)
        elif head == "group" and slash and value:
            return cls(MemberKind.GROUP, *place, value=value)
        elif head.startswith("attribute.") and slash and value:
            name = head.removeprefix("attribute.")
            if _ATTRIBUTE_NAME.fullmatch(name):
                return cls(MemberKind.ATTRIBUTE, *place, name=name, value=value)
        raise ValueError(f"{text!r} is not a workload identity pool principal: {MEMBER_FORMS}")

    @property
    def pool_path(self) -> str:
        return (
            f"projects/{self.project}/locations/{self.location}/workloadIdentityPools/{self.pool}"
        )

    def describe(self) -> str:
        """What the member stands for, in words."""
        if self.kind is MemberKind.SUBJECT:
            return f"the identity whose google.subject is {self.value!r}"
        if self.kind is MemberKind.GROUP:
            return f"the identities whose google.groups hold {self.value!r}"
        if self.kind is MemberKind.ATTRIBUTE:
            return f"the identities whose attribute.{self.name} is {self.value!r}"
        return "every identity in the pool"
