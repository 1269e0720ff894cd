"""Exception types of the model room."""


class ConfigError(ValueError):
    """An Un0Config field is out of range or inconsistent: names the field and the choices."""


class CheckpointError(ValueError):
    """A checkpoint file cannot be used: the message starts with the file and says why."""
