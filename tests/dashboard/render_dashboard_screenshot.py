"""Render the README's dashboard screenshot from five scripted minutes of a partial outage.

    .venv/bin/python tests/dashboard/render_dashboard_screenshot.py   # docs/images/dashboard.png
    .venv/bin/python tests/dashboard/render_dashboard_screenshot.py --dark --out /tmp/dark.png

The page runs on Playwright's fake clock, stepped one poll at a time against
`dashboard_scenario.Scenario`, so five minutes of sparklines take a few seconds to draw.
Not a test (pytest does not collect it): run it by hand when the page changes.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
from pathlib import Path

from dashboard_harness import ADMIN_KEY, CHROMIUM, LAUNCH_ARGS, FakeGateway, LiveServer
from dashboard_scenario import START, STEP, TICKS, Scenario
from playwright.async_api import async_playwright

ROOT = Path(__file__).resolve().parents[2]


async def render(out: Path, *, dark: bool, width: int, height: int, scale: float) -> None:
    scenario = Scenario()
    server = await LiveServer(FakeGateway(scenario.status, scenario.feed)).start()
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
            context = await browser.new_context(
                viewport={"width": width, "height": height},
                device_scale_factor=scale,
                color_scheme="dark" if dark else "light",
                timezone_id="UTC",
                locale="en-GB",
            )
            page = await context.new_page()
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            await page.clock.install(time=_when(START - 2))
            await page.clock.pause_at(_when(START - 1))
            await page.goto(f"{server.url}/dashboard/?key={ADMIN_KEY}&interval={int(STEP * 1000)}")
            for tick in range(TICKS):
                scenario.tick = tick
                if tick:
                    await page.clock.run_for(int(STEP * 1000))
                await page.wait_for_function(
                    "n => Number(document.documentElement.dataset.polls) > n", arg=tick
                )
            await page.evaluate("document.activeElement && document.activeElement.blur()")
            await page.screenshot(path=str(out), full_page=True)
            await browser.close()
            if errors:
                raise SystemExit(f"the page logged errors: {errors}")
    finally:
        await server.stop()


def _when(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "dashboard.png")
    parser.add_argument("--dark", action="store_true")
    parser.add_argument("--width", type=int, default=1440)
    parser.add_argument("--height", type=int, default=900)
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    asyncio.run(
        render(args.out, dark=args.dark, width=args.width, height=args.height, scale=args.scale)
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
