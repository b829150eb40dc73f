"""The one error tree of mesoslite; each class carries the gRPC status it maps to."""

from __future__ import annotations

from typing import ClassVar


class MesosliteError(Exception):
    """Raised for any error mesoslite reports to a caller; the root of the tree."""

    status: ClassVar[str] = "INTERNAL"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ValidationError(MesosliteError):
    """Raised when a request or a spec is malformed; `field` is the path of the bad value."""

    status: ClassVar[str] = "INVALID_ARGUMENT"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field


class PermissionDeniedError(MesosliteError):
    """Raised when the caller may not do what it asked."""

    status: ClassVar[str] = "PERMISSION_DENIED"


class NotFoundError(MesosliteError):
    """Raised when a named object (framework, agent, task, offer) does not exist."""

    status: ClassVar[str] = "NOT_FOUND"


class UnknownOfferError(NotFoundError):
    """Raised when an offer id was never issued, or was rescinded or used already."""


class UnknownFrameworkError(NotFoundError):
    """Raised when a framework id is not known to the master."""


class UnknownAgentError(NotFoundError):
    """Raised when an agent id is not known to the master."""


class UnknownTaskError(NotFoundError):
    """Raised when a task id is not known to the master."""


class ConflictError(MesosliteError):
    """Raised when a request conflicts with current state (an offer that is not yours)."""

    status: ClassVar[str] = "FAILED_PRECONDITION"


class AlreadyExistsError(MesosliteError):
    """Raised when creating something whose id is taken, e.g. a duplicate task id."""

    status: ClassVar[str] = "ALREADY_EXISTS"


class NotLeaderError(MesosliteError):
    """Raised by a master that is not leading; `leader_address` says where to go."""

    status: ClassVar[str] = "UNAVAILABLE"

    def __init__(self, message: str, leader_address: str = "") -> None:
        super().__init__(message)
        self.leader_address = leader_address


class UnavailableError(MesosliteError):
    """Raised when a peer (master, agent) cannot be reached."""

    status: ClassVar[str] = "UNAVAILABLE"


class DeadlineExceededError(MesosliteError):
    """Raised when an operation did not finish in its time limit."""

    status: ClassVar[str] = "DEADLINE_EXCEEDED"


class RegistryError(MesosliteError):
    """Raised when the registry cannot be read or written."""

    status: ClassVar[str] = "UNAVAILABLE"


class ConfigError(MesosliteError):
    """Raised when a daemon's configuration is invalid; the message names every problem."""

    status: ClassVar[str] = "INVALID_ARGUMENT"


class ResourceExhaustedError(MesosliteError):
    """Raised when a call is over a limit of size or rate, e.g. a message over gRPC's
    maximum (`rpc.MAX_REQUEST_BYTES`); the message names the limit."""

    status: ClassVar[str] = "RESOURCE_EXHAUSTED"


class UnauthenticatedError(MesosliteError):
    """Raised when a call carries no valid credentials and the master requires them."""

    status: ClassVar[str] = "UNAUTHENTICATED"
