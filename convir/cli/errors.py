"""The error type of the command line."""


class UserError(Exception):
    """A mistake the user can fix (bad option, unreadable file); printed as one line."""
