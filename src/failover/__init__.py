"""failover: keep AI applications answering when models or providers fail.

router = failover.from_config("failover.yaml")
reply = await router.complete("smart", {"messages": [{"role": "user", "content": "hi"}]})
reply.body, reply.trace
"""

from .classify import Classifier, classify_status, parse_retry_after
from .clock import Clock, FakeClock, SystemClock
from .config import Config, Timeouts, load_config
from .controls import Priority
from .deployment import Deployment
from .errors import (
    AllDeploymentsFailed,
    AttemptTimeout,
    AuthFailed,
    BadRequest,
    Cancelled,
    ConfigError,
    ConnectionFailed,
    ContentFiltered,
    ContextWindowExceeded,
    DeadlineExceeded,
    FailoverError,
    ModelNotFound,
    Overloaded,
    ProviderError,
    RateLimited,
    RequestFailed,
    RequestRejected,
    ServerError,
    StreamInterrupted,
    UnknownRoute,
)
from .events import Event, Hooks
from .factory import from_config
from .kinds import Kind
from .reply import EmbeddingsReply, Reply, StreamReply
from .resilience import (
    BreakerEvent,
    BreakerPolicy,
    BreakerState,
    CircuitBreaker,
    HedgePolicy,
    RetryBudget,
    RetryPolicy,
)
from .resilience.streams import Prefill, Resume, StreamPolicy
from .route import Route
from .router import Router
from .state import MemoryStore, StateStore
from .sync import SyncRouter
from .trace import Attempt, Trace
from .types import BaseDeployment, Chunk, Completion

__version__ = "0.1.0"

__all__ = [
    "AllDeploymentsFailed",
    "Attempt",
    "AttemptTimeout",
    "AuthFailed",
    "BadRequest",
    "BaseDeployment",
    "BreakerEvent",
    "BreakerPolicy",
    "BreakerState",
    "Cancelled",
    "Chunk",
    "CircuitBreaker",
    "Classifier",
    "Clock",
    "Completion",
    "Config",
    "ConfigError",
    "ConnectionFailed",
    "ContentFiltered",
    "ContextWindowExceeded",
    "DeadlineExceeded",
    "Deployment",
    "EmbeddingsReply",
    "Event",
    "FailoverError",
    "FakeClock",
    "HedgePolicy",
    "Hooks",
    "Kind",
    "MemoryStore",
    "ModelNotFound",
    "Overloaded",
    "Prefill",
    "Priority",
    "ProviderError",
    "RateLimited",
    "Reply",
    "RequestFailed",
    "RequestRejected",
    "Resume",
    "RetryBudget",
    "RetryPolicy",
    "Route",
    "Router",
    "ServerError",
    "StateStore",
    "StreamInterrupted",
    "StreamPolicy",
    "StreamReply",
    "SyncRouter",
    "SystemClock",
    "Timeouts",
    "Trace",
    "UnknownRoute",
    "__version__",
    "classify_status",
    "from_config",
    "load_config",
    "parse_retry_after",
]
