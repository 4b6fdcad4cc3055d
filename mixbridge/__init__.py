"""mixbridge: neural networks that drive real mixing consoles.

The core package holds the parameter schema, the session file, audio I/O,
loudness measurement, errors and the CLI. It imports neither torch nor any
plugin host: ``import mixbridge`` stays light.
"""
__version__ = "0.1.0"
