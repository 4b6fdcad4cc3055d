"""The shipped plugin maps: one JSON file per real plugin (host maps) and ``daw/`` for the DAW maps."""
