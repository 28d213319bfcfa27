"""`failover demo`: a gateway, live traffic and a scripted outage, watched in the terminal.

script.py    the timeline, the demo's config, what one run shares (`Options`, `Run`)
clients.py   the clients' traffic, each answer checked
watch.py     what the router told: breaker and health changes, calls, broken streams
story.py     what happened, told in sentences and a row per phase
summary.py   the closing story, table and verdict
view.py      the live terminal view, or plain lines
command.py   the gateway, the run and the click command
"""

from .command import command, run_demo
from .script import SCRIPT, Options, Run, demo_config

__all__ = ["SCRIPT", "Options", "Run", "command", "demo_config", "run_demo"]
