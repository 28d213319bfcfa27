"""Fake provider servers for tests: real aiohttp servers on 127.0.0.1 speaking each wire format.

from fakes import FakeAnthropic, FakeBedrock, FakeGemini, FakeOpenAI
async with FakeOpenAI() as server: ...   # server.base_url, server.push(...), server.requests

Google Cloud: `FakeTokenServer` (the OAuth token endpoint a service-account file names) and
`FakeVertex` (Vertex AI, accepting only the tokens that server issued).
"""

from .anthropic_server import FakeAnthropic
from .bedrock_server import FakeBedrock
from .gemini_server import FakeGemini
from .google_token_server import FakeTokenServer
from .openai_server import FakeOpenAI
from .server import Delay, Drop, FakeServer, Hang, Received, Reply, Stream, sse
from .vertex_server import FakeVertex

__all__ = [
    "Delay",
    "Drop",
    "FakeAnthropic",
    "FakeBedrock",
    "FakeGemini",
    "FakeOpenAI",
    "FakeServer",
    "FakeTokenServer",
    "FakeVertex",
    "Hang",
    "Received",
    "Reply",
    "Stream",
    "sse",
]
