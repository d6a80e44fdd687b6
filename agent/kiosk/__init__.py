"""The patient's kiosk page: a local web page the gate's screen shows full screen, and its voice.

:mod:`agent.kiosk.screen` is the pure model (one state per screen, what may be shown,
the faults); :mod:`agent.kiosk.server` serves the page and pushes each state over
Server-Sent Events; :mod:`agent.kiosk.output` is the :class:`agent.app.ports.Output`
that feeds them; :mod:`agent.kiosk.speech` speaks the prompts.  The page loads nothing
from outside the terminal: its HTML, CSS, script and pictures ship in this package and
its font comes from Debian (``fonts-dejavu-core``), served by the same server.
"""
