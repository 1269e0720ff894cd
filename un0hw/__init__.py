"""un0hw: the front door — command line and end-to-end runs over the rooms."""

__version__ = "0.1.0"
