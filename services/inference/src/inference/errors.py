"""The service's exceptions. Each carries its HTTP status and a stable error code.

Request errors become ``{"error": {"code", "message"}, "request_id"}`` in one handler (app.py).
Start-up refusals end the process with one JSON log line naming the code and the reason, and
exit status EXIT_REFUSED (the line and the status are the contract's,
``artifact_contract.startup``).
Every exit status of ``inference`` is defined here.
"""

from __future__ import annotations

from artifact_contract.startup import EXIT_REFUSED as EXIT_REFUSED

EXIT_OK = 0

BATCH_KEY = "instances"  # the batch form's key: {"instances": [record, ...]}


class InferenceError(Exception):
    status = 500
    code = "internal_error"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


# --- request errors -----------------------------------------------------------------------


class InvalidJSON(InferenceError):
    status = 400
    code = "invalid_json"


class InvalidBody(InferenceError):
    """The body could not be read whole (a malformed chunked body, a cut connection)."""

    status = 400
    code = "invalid_body"


class MalformedBody(InferenceError):
    """The body is not the text format its Content-Type names (CSV, JSON Lines)."""

    status = 400
    code = "malformed_body"


class UnsupportedMediaType(InferenceError):
    status = 415
    code = "unsupported_media_type"


class PayloadTooLarge(InferenceError):
    status = 413
    code = "payload_too_large"


class InvalidInput(InferenceError):
    """The body is JSON but does not follow the model's input schema."""

    status = 422
    code = "invalid_input"


class NonFinitePrediction(InferenceError):
    """The model answered NaN or infinity for values it accepted: there is no answer for this
    input, which is the request's to change (a 5xx would tell clients to retry it)."""

    status = 422
    code = "non_finite_prediction"

    def __init__(self, rows: list[int], batch: bool = False) -> None:
        self.rows = rows
        where = (
            f"{BATCH_KEY}[{rows[0]}]" + (f" (and {len(rows) - 1} more)" if len(rows) > 1 else "")
            if batch
            else "this record"
        )
        super().__init__(
            f"the model gives no finite prediction for {where}: its values are too far from "
            "the training data"
        )


class ModelNotReady(InferenceError):
    status = 503
    code = "model_not_ready"


# --- start-up refusals --------------------------------------------------------------------


class StartupRefusal(InferenceError):
    """The server must not start: the model or the configuration cannot be trusted or used."""

    code = "startup_refused"


class ConfigurationError(StartupRefusal):
    code = "configuration_error"


class ModelSourceError(StartupRefusal):
    code = "model_source_error"


class UnsafeArchiveError(StartupRefusal):
    code = "unsafe_archive"


class ArtifactIntegrityError(StartupRefusal):
    code = "integrity_error"


class IncompatibleModelError(StartupRefusal):
    code = "incompatible_library"


class UntrustedTypeError(StartupRefusal):
    code = "untrusted_type"


class ModelSelfTestError(StartupRefusal):
    code = "example_mismatch"
