"""`python -m failover.simulate SCENARIO.yaml ...`: the simulator without the `failover` CLI."""

from .cli import simulate_command

if __name__ == "__main__":  # pragma: no cover - exercised through a subprocess test
    simulate_command(prog_name="python -m failover.simulate")
