"""mixbridge: neural networks that drive real mixing consoles.

The core package is the bottom layer: the parameter schema (:mod:`.schema`, its types in
:mod:`.parameters`), the session file (:mod:`.session`), versioned records
(:mod:`.records`), audio I/O with the one WAV writer (:mod:`.audio`), loudness and true
peak (:mod:`.loudness`), the mel filterbank (:mod:`.mel`), the parameter smoother
(:mod:`.smoothing`), deterministic ``.npz`` files (:mod:`.npz`), checksums
(:mod:`.checksum`), atomic writes (:mod:`.atomic`), mixing roles (:mod:`.roles`), the
registry convention (:mod:`.registry`), the proxy schema (:mod:`.proxy_schema`), the CLI
vocabulary (:mod:`.cli_options`) and errors (:mod:`.errors`). The application and its CLI sit on top in :mod:`.app`. It
imports neither torch nor any plugin host: ``import mixbridge`` stays light.
"""
__version__ = "0.1.0"
