"""kb's exceptions: a user sees their message, never a traceback."""


class KBError(Exception):
    """Base class of every error kb reports to a person."""


class ConfigError(KBError):
    """A setting is missing or malformed."""


class ValidationError(KBError):
    """Input that kb refuses, with a message that says what to fix."""


class NotFound(KBError):
    """The thing asked for does not exist (or is not visible)."""


class ImportFileError(KBError):
    """An article file could not be imported; the message names the reason."""
