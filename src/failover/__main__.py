"""`python -m failover ...`: the `failover` command (e.g. `python -m failover simulate ...`)."""

from .cli import main

if __name__ == "__main__":  # pragma: no cover - exercised through a subprocess test
    main()
