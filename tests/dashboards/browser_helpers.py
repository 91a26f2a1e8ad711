"""Headless Chromium for the dashboard tests: the driver fixture's factory, a wait helper, and
the geometry checks the plots must pass (tick labels, clipped text)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

needs_chromium = pytest.mark.skipif(
    not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)),
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)",
)


def start_chromium(tmp_path: Path) -> Any:
    """A headless Chromium that downloads into `tmp_path/downloads` without asking."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", "--window-size=1400,1800",
        f"--user-data-dir={tmp_path / 'chrome-profile'}",
    ):  # fmt: skip
        opts.add_argument(flag)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    opts.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    driver = webdriver.Chrome(options=opts, service=Service(CHROMEDRIVER))
    driver.execute_cdp_cmd(
        "Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    driver.downloads = downloads
    return driver


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Poll `predicate` until it returns something truthy; its value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except Exception:  # noqa: BLE001 - the page is still rendering
            value = None
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"the page did not reach the expected state within {timeout} s")


# Every axis label, tick label and title of the Plotly plots in `root` with its box and the
# box of the plot container it belongs to.
_LABEL_BOXES = """
const root = arguments[0];
const sel = '.xtick text, .ytick text, .g-xtitle text, .g-ytitle text, .gtitle';
return Array.from(root.querySelectorAll(sel)).filter(t => t.textContent.trim()).map(t => {
  const plot = t.closest('.js-plotly-plot'), a = t.getBoundingClientRect(), b = plot.getBoundingClientRect();
  return {text: t.textContent, cls: t.closest('.xtick') ? 'x' : t.closest('.ytick') ? 'y' : 'title',
          axis: (t.closest('.xaxislayer-above, .yaxislayer-above') || {}).className?.baseVal || '',
          plot: plot.id || plot.getAttribute('data-param') || '',
          box: [a.left, a.top, a.right, a.bottom], container: [b.left, b.top, b.right, b.bottom]};
});
"""


def label_boxes(driver: Any, root: Any) -> list[dict[str, Any]]:
    return driver.execute_script(_LABEL_BOXES, root)


def clipped(labels: list[dict[str, Any]]) -> list[str]:
    """Labels whose box reaches outside their plot's container (by more than half a pixel)."""
    out = []
    for lab in labels:
        (x0, y0, x1, y1), (cx0, cy0, cx1, cy1) = lab["box"], lab["container"]
        if x0 < cx0 - 0.5 or y0 < cy0 - 0.5 or x1 > cx1 + 0.5 or y1 > cy1 + 0.5:
            out.append(f"{lab['plot']}: {lab['text']!r} at {lab['box']} outside {lab['container']}")
    return out


def tick_texts(driver: Any, plot: Any, axis: str) -> list[str]:
    """The tick labels of one axis ('x' or 'y') of a Plotly plot, left to right / bottom up."""
    return driver.execute_script(
        f"return Array.from(arguments[0].querySelectorAll('.{axis}tick text'))"
        ".map(t => t.textContent);",
        plot,
    )
