"""mixbridge.app: the application layer, on top of every other package (README "Layout and design").

:mod:`~mixbridge.app.automix` holds the main job (``automix``, ``render``); :mod:`~mixbridge.app.cli`
is the ``mixbridge`` command line and :mod:`~mixbridge.app.commands` its main-job commands, thin
shells over those library calls. Nothing below this package imports it (tests/test_layers.py).
"""
