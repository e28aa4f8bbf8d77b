"""The host's error tree: each says what went wrong in words a clinician or engineer can act on."""


class PumpsimError(Exception):
    """Base of every error pumpsim reports."""


class UsageError(PumpsimError):
    """A command line or argument that cannot be right."""


class LinkError(PumpsimError):
    """The serial line to the pump failed."""


class LinkTimeout(LinkError):
    """The pump did not answer in time."""


class BoardGone(LinkError):
    """The port vanished: the board was unplugged or stopped."""


class FrameError(PumpsimError):
    """A reply that is not a valid frame."""


class Refused(PumpsimError):
    """The pump refused a request: code is its E_ code."""

    def __init__(self, code, reason, limit=None):
        super().__init__("%s: %s" % (code, reason))
        self.code = code
        self.reason = reason
        self.limit = limit


class DeployError(PumpsimError):
    """Building or deploying the firmware failed."""
