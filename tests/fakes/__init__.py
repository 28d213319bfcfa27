"""Fake provider servers for tests: real aiohttp servers on 127.0.0.1 speaking each wire format.

from fakes import FakeAnthropic, FakeGemini, FakeOpenAI
async with FakeOpenAI() as server: ...   # server.base_url, server.push(...), server.requests
"""

from .anthropic_server import FakeAnthropic
from .gemini_server import FakeGemini
from .openai_server import FakeOpenAI
from .server import Delay, Drop, FakeServer, Hang, Received, Reply, Stream, sse

__all__ = [
    "Delay",
    "Drop",
    "FakeAnthropic",
    "FakeGemini",
    "FakeOpenAI",
    "FakeServer",
    "Hang",
    "Received",
    "Reply",
    "Stream",
    "sse",
]
