"""Which AWS errors are permanent: the line between a dead letter now and a retry later.

botocore has already retried the throttling codes it knows, 5xx and dropped connections
(its retry mode) before an error reaches an adapter, and those may pass: they stay
``StorageError``, as does one it does not retry (SNS's ``Throttled``, HTTP 429), which the
detector outbox then retries. An
error the service returns for the request itself (a parameter it never takes, a body too
large) comes back the same every time: the adapters raise ``RefusedError`` for the codes
they list, so the detector outbox keeps the action as a dead letter at once instead of
sending it 50 times over about four hours. Errors about the deployment (no such topic, no
permission, a disabled key) are retried: an operator can fix them, and the alert still
matters then. A code not listed is retried too: a mistaken retry costs an API call, a
mistaken refusal an alert.
"""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

from edge.errors import RefusedError, StorageError

SNS_REFUSALS = frozenset({"InvalidParameter", "ParameterValueInvalid", "ValidationException"})
"""SNS ``Publish`` errors about the request itself (SNS API reference, Publish errors): the
same message is refused every time, whatever the operator changes."""

IOT_DATA_REFUSALS = frozenset(
    {
        "InvalidRequestException",
        "RequestEntityTooLargeException",
        "MethodNotAllowedException",
        "UnsupportedDocumentEncodingException",
    }
)
"""iot-data ``Publish`` errors about the request itself."""

CONFIGURATION_ERRORS = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "AuthorizationError",
        "NotFound",
        "InvalidSecurity",
        "EndpointDisabled",
        "PlatformApplicationDisabled",
        "KMSDisabled",
        "KMSInvalidState",
        "KMSNotFound",
        "KMSAccessDenied",
        "KMSOptInRequired",
        "UnauthorizedException",
        "ForbiddenException",
    }
)
"""Errors about the deployment, not the message (a topic deleted, a role or key policy
that does not allow the call, a disabled key): they last until an operator fixes them, and
then the same alert goes out, so they are retried like a throttle (about four hours of
backoff), with the code in the error, rather than losing the alert at the first try. An
IAM change also takes a while to reach every endpoint."""


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def classified(
    error: ClientError | BotoCoreError, refusals: frozenset[str], what: str
) -> StorageError:
    """The error to raise ``from`` *error*: ``RefusedError`` if its code is in *refusals*
    (or botocore refused the parameters before sending), else ``StorageError``. *what*
    names the call (``sns <arn>: email publish``)."""
    if isinstance(error, ParamValidationError):
        return RefusedError(
            f"{what} refused by botocore: {error}; not retried", reason="ParamValidation"
        )
    if not isinstance(error, ClientError):
        return StorageError(f"{what} failed: {error}")
    code = error_code(error)
    message = error.response.get("Error", {}).get("Message") or code
    if code in refusals:
        return RefusedError(f"{what} refused ({code}): {message}; not retried", reason=code)
    if code in CONFIGURATION_ERRORS:
        return StorageError(
            f"{what} failed ({code}): {message}; retried until the deployment allows it"
        )
    return StorageError(f"{what} failed: {error}")
