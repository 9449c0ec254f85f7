"""kb's exceptions: a user sees their message, never a traceback."""


class KBError(Exception):
    """Base class of every error kb reports to a person."""


class ConfigError(KBError):
    """A setting is missing or malformed."""


class ValidationError(KBError):
    """Input that kb refuses, with a message that says what to fix."""


class FieldError(ValidationError):
    """Input refused because of some fields; ``errors`` maps each field's name to its message,
    so a form can show every message at its field."""

    def __init__(self, errors: dict[str, str]):
        self.errors = dict(errors)
        super().__init__(" ".join(self.errors.values()))


class MediaError(ValidationError):
    """An upload that is not an image kb accepts (type, size or dimensions), with what to do instead."""


class NotFound(KBError):
    """The thing asked for does not exist (or is not visible)."""


class ImportFileError(KBError):
    """An article file could not be imported; the message names the reason."""
