"""The base of every error a user can cause and fix; the CLI prints these without a traceback."""


class InferloopError(Exception):
    """A problem the message explains, with what to do about it."""
