"""`python -m failover.cli ...`: the `failover` command, for a checkout without the script."""

from .group import main

if __name__ == "__main__":  # pragma: no cover - exercised through subprocess tests
    main()
