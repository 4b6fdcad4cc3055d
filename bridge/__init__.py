"""mixbridge.bridge: DAWs over OSC and MIDI, and the live JACK bus. Uses the core, the plugin host and
the torch-free streaming runtime only (``tests/test_layers.py``).

Layered like python-osc (STYLE.md point 9), bottom to top:

* ``osc`` -- OSC 1.0 messages and bundles, exact bytes (python-osc plus the checks it lacks);
* ``routing`` -- datagrams to handlers by address pattern, no sockets; ``transport`` -- UDP client
  and server with timeouts (127.0.0.1 by default); ``pacing`` -- the one perf_counter clock;
* ``profiles`` -- the DAW profile contract and registry; one file per DAW: ``profile_reaper``,
  ``profile_ableton``, ``profile_ardour``; their plugin maps ``plugin_maps`` (with Ardour's ACE
  laws in ``ace_laws``);
* ``push`` -- match, plan, push and pull, DAW-agnostic; ``automation`` -- curves played in real
  time; ``midi`` -- the same curves as MIDI CCs (file and live);
* ``live`` -- the JACK host of the live bus, ``live_chain`` its per-block signal path,
  ``live_control`` its OSC control, ``live_jack`` libjack's latency API, ``jack_rig`` a dummy server and
  a loopback rig to measure it;
* ``ardour`` -- headless Ardour 7 for tests and benchmarks; ``cli`` -- the commands.
"""
