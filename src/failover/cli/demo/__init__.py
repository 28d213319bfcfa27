"""`failover demo`: a gateway, live traffic and a scripted outage, watched in the terminal."""

from .command import SCRIPT, command, demo_config, run_demo

__all__ = ["SCRIPT", "command", "demo_config", "run_demo"]
