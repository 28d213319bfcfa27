"""The HTTP gateway: an OpenAI- and Anthropic-compatible ASGI app in front of a `Router`.

app = failover.server.create_app("failover.yaml")
uvicorn.run(app, http=failover.server.GatewayHttpProtocol, loop="uvloop")
"""

from .app import Gateway, create_app
from .protocol import GatewayHttpProtocol

__all__ = ["Gateway", "GatewayHttpProtocol", "create_app"]
