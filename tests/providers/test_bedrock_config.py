"""`kind: bedrock` in a config: the adapter it builds, its region, and `failover check`."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from failover import cli
from failover.config import Config, DeploymentConfig, ProviderConfig
from failover.errors import ConfigError
from failover.providers import create_adapter
from failover.providers.bedrock import BedrockAdapter
from failover.transport import Transport

DEP = DeploymentConfig(provider="aws", model="us.anthropic.claude-v1:0", weight=2.0, timeout="30s")
# a port nothing listens on: a probe that got as far as the network would fail differently
NOWHERE = "http://127.0.0.1:9"

CHECK = f"""\
providers:
  aws:
    kind: bedrock
    base_url: {NOWHERE}
    options: {{region: us-east-1, control_url: "{NOWHERE}"}}
routes:
  claude:
    deployments: [{{provider: aws, model: us.anthropic.claude-sonnet-4-5-20250929-v1:0}}]
"""


def test_bedrock_kind_builds_a_bedrock_adapter(aws_env: Path) -> None:
    """kind: bedrock builds a BedrockAdapter with the region and profile of its options."""
    provider = ProviderConfig.model_validate(
        {"kind": "bedrock", "options": {"region": "eu-central-1", "profile": "work"}}
    )
    adapter = create_adapter(DEP, provider, provider_name="aws", transport=Transport())
    assert isinstance(adapter, BedrockAdapter)
    assert (adapter.name, adapter.region, adapter.weight, adapter.timeout) == (
        "aws/us.anthropic.claude-v1:0",
        "eu-central-1",
        2.0,
        30,
    )
    assert adapter.base_url == "https://bedrock-runtime.eu-central-1.amazonaws.com"
    assert adapter.profile == "work"


def test_a_bedrock_provider_without_a_region_names_the_setting(aws_env: Path) -> None:
    """With no region in options or the environment, building the route says where to set it."""
    config = Config.from_yaml(
        "providers: {aws: {kind: bedrock}}\n"
        "routes: {claude: {deployments: [{provider: aws, model: m}]}}\n",
        env={},
    )
    with pytest.raises(ConfigError, match=r"providers\.aws\.options\.region"):
        create_adapter(
            config.routes["claude"].deployments[0],
            config.providers["aws"],
            provider_name="aws",
            transport=Transport(),
        )


def test_check_reports_missing_aws_credentials(
    aws_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """failover check accepts a Bedrock deployment and says plainly that no credentials exist."""
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(var)
    path = aws_env / "failover.yaml"
    path.write_text(CHECK)
    result = CliRunner().invoke(cli.main, ["check", "-c", str(path)], env={"COLUMNS": "400"})
    assert result.exit_code == 1
    assert "config OK" in result.output and "bedrock" in result.output
    assert "auth: no AWS credentials found" in result.output
