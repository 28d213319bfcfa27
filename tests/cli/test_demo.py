"""`failover demo`: the whole scripted outage, fast, with nothing left running afterwards."""

from __future__ import annotations

import logging
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from click.testing import CliRunner
from rich.console import Console

from failover.chaos import FaultInjector
from failover.cli import main
from failover.cli.demo import SCRIPT, Options, Run, demo_config
from failover.cli.demo.clients import Clients
from failover.cli.demo.script import PROMPTS, REPLY
from failover.cli.demo.story import Answer, Phase, Story
from failover.cli.demo.summary import print_summary
from failover.cli.demo.view import LogTap, Screen
from failover.cli.demo.watch import Break, Watch
from failover.errors import Kind
from failover.events import StreamBreak
from failover.factory import from_config
from failover.server import Gateway


def listening(port: int) -> bool:
    """Whether anything accepts connections on 127.0.0.1:`port`."""
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port something else is already listening on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.mark.timeout(30)
def test_the_outage_fails_over_with_no_client_errors(busy_port: int) -> None:
    """The script runs to the end: breakers open and recover, clients see no error, exit 0,
    the busy port is named and avoided, and the gateway is gone afterwards."""
    started, threads = time.monotonic(), threading.active_count()
    result = CliRunner().invoke(
        main, ["demo", "--speed", "8", "--no-live", "--port", str(busy_port), "--seed", "1"]
    )
    output = result.output
    assert result.exit_code == 0, output
    assert time.monotonic() - started < 25
    assert f"port {busy_port} is not available" in output
    found = re.search(r"http://127\.0\.0\.1:(\d+)/dashboard/", output)
    assert found is not None
    port = int(found.group(1))
    assert port != busy_port and not listening(port)
    assert threading.active_count() == threads
    assert "sim-a was down" in output and "breaker opened after" in output
    assert "smart traffic moved to sim-b" in output
    assert "sim-a came back" in output and "sim-c came back" in output
    assert "sim-c browned out" in output
    assert re.search(r"sim-a cut \d+ streams? mid-answer: \d+ rescued \(continued on sim-b", output)
    assert "stream rescued after 8 words: continued on sim-b" in output
    assert re.search(r"(\d+) streams? broke mid-answer, \1 rescued: \d+ callers? still", output)
    assert "clients saw 0 errors in" in output


def test_speed_and_duration_are_one_choice() -> None:
    """--speed and --duration both set the pace: giving both is a usage error."""
    result = CliRunner().invoke(main, ["demo", "--speed", "2", "--duration", "10"])
    assert result.exit_code == 2 and "not both" in result.output


def test_help_tells_the_script() -> None:
    """--help shows the steps, the options and the exit status."""
    result = CliRunner().invoke(main, ["demo", "--help"])
    assert result.exit_code == 0
    for word in (
        "sim-a down",
        "cuts streams",
        "brownout",
        "--keep-serving",
        "--no-live",
        "Exit status",
    ):
        assert word in result.output


async def test_a_client_error_fails_the_run() -> None:
    """Any error a client saw makes the exit status 1, with the phase and the error named."""
    router = from_config(demo_config())
    run = Run(Options(), Gateway(router), "http://127.0.0.1:1")
    story = Story(Watch(router, run.now), run.answers, {"smart": ["sim-a/sim-large"]})
    story.begin(Phase(SCRIPT[1], 0.0, ["sim-a/sim-large"]))
    run.answers += [
        Answer(0.1, "smart", False, "sim-b/sim-large", None, 0.2),
        Answer(0.2, "smart", False, None, "HTTP 503: no deployment available", 0.3),
    ]
    story.close(1.0)
    console = Console(record=True, width=140)
    assert print_summary(console, run, story) == 1
    text = console.export_text()
    assert "clients saw 1 error in 2 requests (during: sim-a down)" in text
    assert "HTTP 503" in text
    assert story.lines[-1].text.startswith("✘ sim-a was down")
    await router.aclose()


@pytest.mark.timeout(30)
def test_keep_serving_until_ctrl_c(busy_port: int) -> None:
    """--keep-serving leaves the gateway answering after the script; Ctrl-C stops it cleanly."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = ["demo", "--speed", "20", "--keep-serving", "--port", str(port)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "failover.cli", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "keeps serving" in line:
                break
        assert any("keeps serving" in line for line in lines), "".join(lines)
        body = {"model": "smart", "messages": [{"role": "user", "content": "hi"}]}
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            data=orjson.dumps(body),
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as answer:
            assert answer.headers["x-failover-deployment"] == "sim-a/sim-large"
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, "".join(lines) + rest
    assert "Traceback" not in rest
    assert not listening(port)


@pytest.mark.parametrize("width", [120, 80])
async def test_the_live_view_draws_deployments_clients_and_story(width: int) -> None:
    """A frame shows every deployment's breaker, health, traffic and fault, what the clients
    saw and the story; a narrow terminal loses only the `serves` column."""
    router = from_config(demo_config())
    run = Run(Options(), Gateway(router), "http://127.0.0.1:1")
    story = Story(Watch(router, run.now), run.answers, {"smart": ["sim-a/sim-large"]})
    story.routes = {"smart": ["sim-a/sim-large", "sim-b/sim-large"]}
    tap = LogTap(run.now)
    console = Console(record=True, width=width, force_terminal=False)
    screen = Screen(run, story, tap, console)
    now = run.now()
    run.answers += [Answer(now, "smart", False, "sim-b/sim-large", None, now + 0.1)] * 3
    story.begin(Phase(SCRIPT[1], now, ["sim-a/sim-large"]))
    injector = router.deployments()["sim-a/sim-large"]
    assert isinstance(injector, FaultInjector)
    injector.set_faults([{"type": "reset"}])
    with tap.installed():
        logging.getLogger("failover.event").warning("breaker closed -> open")
    console.print(screen.render())
    frame = console.export_text()
    assert "sim-a/sim-large" in frame and "sim-b/sim-large" in frame and "reset" in frame
    assert "100%" in frame and "errors 0" in frame and "smart -> sim-b/sim-large" in frame
    assert "▶ sim-a down" in frame and "breaker closed -> open" in frame
    assert ("serves" in frame) is (width >= 100)
    assert all(len(line) <= width for line in frame.splitlines())
    screen.serving()
    assert "/admin/chaos/sim-a/sim-large" in console.export_text()
    await router.aclose()


async def test_a_rescued_stream_is_counted_and_told() -> None:
    """The live view counts rescued streams and shows the latest; the phase's line and the
    summary say how many broke and that the callers still got whole answers."""
    router = from_config(demo_config())
    run = Run(Options(), Gateway(router), "http://127.0.0.1:1")
    watch = Watch(router, run.now, REPLY)
    story = Story(watch, run.answers, {"smart": ["sim-a/sim-large", "sim-b/sim-large"]})
    streams = next(step for step in SCRIPT if step.kind == "streams")
    story.begin(Phase(streams, 0.0, ["sim-a/sim-large"]))
    watch.breaks.append(Break(0.5, "sim-a/sim-large", 8, "continued", "sim-b/sim-large"))
    run.answers.append(Answer(0.4, "smart", True, "sim-a/sim-large", None, 0.9, rescued=1))
    console = Console(record=True, width=140, force_terminal=False)
    console.print(Screen(run, story, LogTap(run.now), console).render())
    frame = console.export_text()
    assert "rescued mid-answer 1" in frame
    assert "latest: stream rescued after 8 words: continued on sim-b" in frame
    story.close(1.0)
    assert story.lines[-1].text.startswith("✔ sim-a cut 1 stream mid-answer: 1 rescued")
    assert print_summary(console, run, story) == 0
    summary = console.export_text()
    assert "1 stream broke mid-answer, 1 rescued: 1 caller still got the whole answer" in summary
    await router.aclose()


async def test_a_broken_stream_counts_words_from_the_answer() -> None:
    """The gateway's stream hook is turned into a break at a word of the demo's answer."""
    router = from_config(demo_config())
    watch = Watch(router, lambda: 1.0, REPLY)
    delivered = len(" ".join(REPLY.split()[:8]))
    router.hooks.broke(
        StreamBreak("smart", "sim-a/sim-large", Kind.CONNECTION, delivered, "restarted", "sim-b/x")
    )
    assert watch.breaks == [Break(1.0, "sim-a/sim-large", 8, "restarted", "sim-b/x")]
    assert watch.breaks[0].describe() == "stream rescued after 8 words: restarted on sim-b"
    watch.detach()
    router.hooks.broke(StreamBreak("smart", "sim-a/sim-large", Kind.TIMEOUT, 1, "failed"))
    assert len(watch.breaks) == 1  # detached: no longer listening
    await router.aclose()


async def test_a_streamed_answer_that_is_not_whole_is_a_client_error() -> None:
    """The clients check every streamed answer is the whole answer: a stream that says only
    half of it (or repeats a part) counts as an error; a rescued whole one counts as rescued."""
    half = " ".join(REPLY.split()[:8])

    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        if not body["stream"]:
            return web.json_response({"choices": [{"message": {"content": REPLY}}]})
        text = half if body["messages"][0]["content"] == PROMPTS[0] else REPLY
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        chunk = {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": "stop"}]}
        await resp.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
        await resp.write(
            b": failover recovered this stream 1 time(s); began on a, finished on b\n\n"
        )
        await resp.write(b"data: [DONE]\n\n")
        return resp

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    server = TestServer(app)
    await server.start_server()
    router = from_config(demo_config())
    run = Run(Options(rate=100), Gateway(router), str(server.make_url("")).rstrip("/"))
    try:
        async with aiohttp.ClientSession() as session:
            clients = Clients(run, session, random.Random(3))
            await clients.send(until=0.5)
            await clients.drain(timeout=5)
    finally:
        await server.close()
        await router.aclose()
    streamed = [a for a in run.answers if a.stream]
    halves = [a for a in streamed if a.error is not None]
    assert halves and all("not the whole answer" in (a.error or "") for a in halves)
    whole = [a for a in streamed if a.error is None]
    assert whole and all(a.rescued == 1 for a in whole)
