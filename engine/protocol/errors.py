"""The one error type a handler raises; the server turns it into the error envelope."""

from __future__ import annotations


class ErrorCode:
    """Stable machine codes carried in the `code` field of every error reply."""

    BAD_JSON = "bad_json"
    BAD_FRAME = "bad_frame"
    AUTH_MISSING = "auth_missing"
    AUTH_FORMAT = "auth_format"
    AUTH_STALE = "auth_stale"
    AUTH_SIGNATURE = "auth_signature"
    NOT_AUTHORIZED = "not_authorized"
    INVALID_FIELD = "invalid_field"
    NOT_FOUND = "not_found"
    FORBIDDEN = "forbidden"
    CONFLICT = "conflict"
    TOO_LARGE = "too_large"
    STORAGE = "storage_error"
    INTERNAL = "internal_error"


class EngineError(Exception):
    """A failure the client should hear about, with a readable text and a stable code.

    `message` is shown to people as is ("Engine Error: <message>" in the web GUI), so it must
    say what went wrong and, where possible, what to do.
    """

    def __init__(self, code: str, message: str, **extra: object) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra

    @classmethod
    def invalid(cls, field: str, problem: str) -> "EngineError":
        return cls(ErrorCode.INVALID_FIELD, f"Field '{field}' {problem}.", field=field)

    @classmethod
    def not_found(cls, what: str) -> "EngineError":
        return cls(ErrorCode.NOT_FOUND, f"{what} was not found.")

    def __repr__(self) -> str:
        return f"EngineError({self.code!r}, {self.message!r})"
