"""models: the Un-0 network — configs of every published size, the module, checkpoints."""

from models.checkpoint import FORMAT_VERSION, SHIPPED, load, read_key_map, release_config, save, save_release
from models.config import PUBLISHED, RELEASE_TABLE, Un0Config
from models.errors import CheckpointError, ConfigError
from models.un0 import Dynamics, Un0

__all__ = [
    "FORMAT_VERSION",
    "PUBLISHED",
    "RELEASE_TABLE",
    "SHIPPED",
    "CheckpointError",
    "ConfigError",
    "Dynamics",
    "Un0",
    "Un0Config",
    "load",
    "read_key_map",
    "release_config",
    "save",
    "save_release",
]
