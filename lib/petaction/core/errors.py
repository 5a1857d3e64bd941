"""The error a bad setting raises, in every stage (the CLI turns it into one message, exit 2)."""


class ParamError(ValueError):
    """A bad parameter: unknown key, unknown model/profile, wrong value."""
