"""Moved: the one master bus lives in :mod:`mixbridge.plugins.master_bus` (kept importable while callers move)."""
from mixbridge.plugins.master_bus import *  # noqa: F401,F403
from mixbridge.plugins.master_bus import render_master, StreamingMaster, master_params_from_session  # noqa: F401
