"""aicodec: a command-line lab for autonomous video-codec research."""

__version__ = "0.1.0"
