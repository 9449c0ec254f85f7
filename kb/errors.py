"""kb's exceptions: a user sees their message, never a traceback."""


class KBError(Exception):
    """Base class of every error kb reports to a person."""


class ConfigError(KBError):
    """A setting is missing or malformed."""


class ValidationError(KBError):
    """Input that kb refuses, with a message that says what to fix."""


class FieldError(ValidationError):
    """Input refused because of one field; ``field`` names it, so a form can show the message there."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


class MediaError(ValidationError):
    """An upload that is not an image kb accepts (type, size or dimensions), with what to do instead."""


class NotFound(KBError):
    """The thing asked for does not exist (or is not visible)."""


class ImportFileError(KBError):
    """An article file could not be imported; the message names the reason."""
