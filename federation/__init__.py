"""federation: an OIDC identity-federation token issuer for agent runs.

The library's public surface is what ``__all__`` names; everything else is private to
the package and may change.
"""

__version__ = "0.1.0"

from federation.clock import Clock, ManualClock, SystemClock
from federation.durations import DurationPolicy, Grant, format_duration, parse_duration
from federation.errors import (
    AuthenticationRequired,
    ConfigurationError,
    Conflict,
    FederationError,
    InternalError,
    InvalidRequest,
    MethodNotAllowed,
    NotAuthorized,
    OperationNotSupported,
    ResourceNotFound,
    ResourceUnavailable,
    VerificationFailed,
)
from federation.issuance import IssuedToken, IssueRequest, TokenIssuer
from federation.keys import FileKeyStore, Keyring, KeyStore, LocalSigner, Signer
from federation.settings import Settings, load_settings
from federation.subjects import COMPONENTS, SubjectContext, SubjectRenderer, parse_template
from federation.tokens import Claims

__all__ = [
    "COMPONENTS",
    "AuthenticationRequired",
    "Claims",
    "Clock",
    "ConfigurationError",
    "Conflict",
    "DurationPolicy",
    "FederationError",
    "FileKeyStore",
    "Grant",
    "InternalError",
    "InvalidRequest",
    "IssueRequest",
    "IssuedToken",
    "KeyStore",
    "Keyring",
    "LocalSigner",
    "ManualClock",
    "MethodNotAllowed",
    "NotAuthorized",
    "OperationNotSupported",
    "ResourceNotFound",
    "ResourceUnavailable",
    "Settings",
    "Signer",
    "SubjectContext",
    "SubjectRenderer",
    "SystemClock",
    "TokenIssuer",
    "VerificationFailed",
    "__version__",
    "format_duration",
    "load_settings",
    "parse_duration",
    "parse_template",
]
