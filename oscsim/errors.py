"""The one exception type of the simulator room."""


class OscsimError(ValueError):
    """Invalid input to the simulator: names what was expected and what arrived."""
