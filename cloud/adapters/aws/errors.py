"""Which AWS errors are permanent: the line between a dead letter now and a retry later.

botocore has already retried throttling, 5xx and dropped connections (its retry mode)
before an error reaches an adapter, and those may pass: they stay ``StorageError``. An
error the service returns for the request itself (a parameter it never takes, a resource
that does not exist, no permission) comes back the same every time: the adapters raise
``RefusedError`` for the codes they list, so the detector outbox keeps the action as a
dead letter at once instead of sending it 50 times over about four hours. A code not
listed is retried: a mistaken retry costs an API call, a mistaken refusal an alert.
"""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

from edge.errors import RefusedError, StorageError

ACCESS_DENIED = frozenset({"AccessDenied", "AccessDeniedException"})
"""What IAM answers for any service when the role may not call the operation."""

SNS_REFUSALS = frozenset(
    {
        "InvalidParameter",
        "ParameterValueInvalid",
        "ValidationException",
        "NotFound",
        "AuthorizationError",
        "InvalidSecurity",
        "EndpointDisabled",
        "PlatformApplicationDisabled",
        "KMSDisabled",
        "KMSInvalidState",
        "KMSNotFound",
        "KMSAccessDenied",
        "KMSOptInRequired",
    }
    | ACCESS_DENIED
)
"""SNS ``Publish`` errors that the same request meets every time (SNS API reference,
Publish errors; ``KMSThrottling`` and ``InternalError`` are left out: they pass)."""

IOT_DATA_REFUSALS = frozenset(
    {
        "InvalidRequestException",
        "RequestEntityTooLargeException",
        "UnauthorizedException",
        "ForbiddenException",
        "MethodNotAllowedException",
        "UnsupportedDocumentEncodingException",
    }
    | ACCESS_DENIED
)
"""iot-data ``Publish`` errors that the same request meets every time (``ThrottlingException``,
``InternalFailureException`` and ``ServiceUnavailableException`` pass)."""


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def classified(
    error: ClientError | BotoCoreError, refusals: frozenset[str], what: str
) -> StorageError:
    """The error to raise ``from`` *error*: ``RefusedError`` if its code is in *refusals*
    (or botocore refused the parameters before sending), else ``StorageError``. *what*
    names the call (``sns <arn>: email publish``)."""
    if isinstance(error, ClientError):
        code = error_code(error)
        if code in refusals:
            message = error.response.get("Error", {}).get("Message") or code
            return RefusedError(f"{what} refused ({code}): {message}; not retried", reason=code)
    elif isinstance(error, ParamValidationError):
        return RefusedError(
            f"{what} refused by botocore: {error}; not retried", reason="ParamValidation"
        )
    return StorageError(f"{what} failed: {error}")
