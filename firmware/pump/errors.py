# The firmware's error tree: each error knows the protocol code it is reported with.


class PumpError(Exception):
    code = "E_STATE"


class FrameError(PumpError):
    code = "E_FRAME"


class CrcError(FrameError):
    code = "E_CRC"


class UnknownVerb(PumpError):
    code = "E_UNKNOWN"


class ArgError(PumpError):
    code = "E_ARG"


class AuthError(PumpError):
    code = "E_AUTH"


class ReplayError(AuthError):
    code = "E_REPLAY"


class LockedError(PumpError):
    code = "E_LOCKED"


class StateError(PumpError):
    code = "E_STATE"


class TransitionError(StateError):
    pass


class ConfirmError(PumpError):
    """A change that risks withdrawal, sent without its confirmation."""

    code = "E_CONFIRM"


class LimitError(PumpError):
    code = "E_LIMIT"

    def __init__(self, limit, reason):
        super().__init__(reason)
        self.limit = limit
