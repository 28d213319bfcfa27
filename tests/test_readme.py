"""The README shows what is built: its config example loads and builds a router."""

from __future__ import annotations

import re
from pathlib import Path

from failover import from_config
from failover.config import Config

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
ENV = {"OPENAI_API_KEY": "sk-x", "ANTHROPIC_API_KEY": "sk-ant-x", "FAILOVER_API_KEY": "k"}


def test_every_yaml_example_in_the_readme_loads_and_builds() -> None:
    """Each ```yaml block of README.md is a valid config that builds a router."""
    blocks = re.findall(r"```yaml\n(.*?)```", README, re.S)
    assert blocks
    for block in blocks:
        router = from_config(Config.from_yaml(block, env=ENV))
        assert router.route_names()
