"""The web dashboard in headless Chromium against a live service whose scheduler runs a real
toy sweep on a local Ray: the frontier is drawn, grows live, shows configs, and exports download."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import yaml
from browser_helpers import needs_chromium
from browser_helpers import wait_for as _wait

from experiments.service.auth import create_token
from experiments.service.context import ServiceSettings
from experiments.service.local import LocalService
from experiments.store.repository import Store

TOY = Path(__file__).resolve().parents[2] / "experiments" / "sweeps" / "toy_chinchilla.yaml"

pytestmark = [pytest.mark.browser, pytest.mark.slow, needs_chromium]


def _spec(name: str, max_trials: int) -> str:
    data = yaml.safe_load(TOY.read_text())
    data.update(name=name, optimizer={"name": "random"})
    data["budget"] = {"max_trials": max_trials, "parallel_trials": 2}
    return yaml.safe_dump(data)


# Plotly draws each trace as a `g.trace` in the scatter layer: trials first, then the frontier
FRONTIER_POINTS = "#frontier .scatterlayer .trace:nth-child(-n+2) path.point"
FRONTIER_TRACE = "#frontier .scatterlayer .trace:nth-child(2)"


def test_dashboard_draws_a_live_frontier_and_downloads_an_export(
    ray_local: str, browser, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    storage = f"sqlite:///{tmp_path / 'web.db'}"
    store = Store(storage)
    token = create_token(store.session, "alice")
    store.dispose()
    settings = ServiceSettings(
        storage=storage, cache_dir=tmp_path / "cache", fit_bootstrap=20, ray_address=ray_local
    )
    with LocalService(settings) as svc:
        auth = {"Authorization": f"Bearer {token}"}
        api = httpx.Client(base_url=svc.url, headers=auth, timeout=60)
        assert api.post("/api/sweeps", json={"spec_yaml": _spec("web-toy", 10)}).status_code == 201
        _wait(lambda: api.get("/api/sweeps/web-toy").json()["status"] == "finished")

        browser.get(svc.url + "/")
        link = browser.find_element(By.CSS_SELECTOR, "#sweeps-table a[href='/sweeps/web-toy']")
        link.click()

        def n_points() -> int:  # trials + frontier traces (failed trials are a third)
            return len(browser.find_elements(By.CSS_SELECTOR, FRONTIER_POINTS))

        ok = [t for t in api.get("/api/sweeps/web-toy/trials").json() if t["status"] == "succeeded"]
        _wait(lambda: n_points() == len(ok))
        frontier = browser.find_elements(By.CSS_SELECTOR, FRONTIER_TRACE + " path.point")
        assert frontier and browser.find_elements(By.CSS_SELECTOR, FRONTIER_TRACE + " path.js-line")
        n_front = sum(
            p["frontier"] for p in api.get("/api/sweeps/web-toy/frontier").json()["points"]
        )
        assert len(frontier) == n_front

        # a point's config on hover
        ActionChains(browser).move_to_element(frontier[0]).perform()
        details = _wait(lambda: browser.find_element(By.ID, "point-details").text)
        assert "learning_rate" in details and "trial" in details

        # the rest of the page: hyperparameters against cost, curves, trials table, the fit
        assert len(browser.find_elements(By.CSS_SELECTOR, ".hp-plot.js-plotly-plot")) == 3
        rows = browser.find_elements(By.CSS_SELECTOR, "#trials-table tbody tr")
        assert len(rows) == 10
        _wait(lambda: browser.find_element(By.ID, "predicted-loss").text)
        imgs = _wait(lambda: browser.find_elements(By.CSS_SELECTOR, "#scaling-plots img"))
        _wait(
            lambda: all(
                browser.execute_script("return arguments[0].naturalWidth", i) > 0 for i in imgs
            )
        )

        # the owner resumes the sweep with a bigger budget: the open page picks the new points up
        assert api.post("/api/sweeps", json={"spec_yaml": _spec("web-toy", 20)}).json()["resumed"]
        _wait(lambda: api.get("/api/sweeps/web-toy").json()["status"] == "finished")
        ok2 = [
            t for t in api.get("/api/sweeps/web-toy/trials").json() if t["status"] == "succeeded"
        ]
        assert len(ok2) > len(ok)
        _wait(lambda: n_points() == len(ok2), timeout=45)

        # export button -> a real download of the large-run config
        export = _wait(
            lambda: browser.find_element(By.CSS_SELECTOR, "a.export-link[data-format='yaml']")
        )
        export.click()
        target = browser.downloads / "web-toy-large_run.yaml"
        _wait(lambda: target.is_file() and target.stat().st_size > 0, timeout=60)
        assert "params" in yaml.safe_load(target.read_text())
        api.close()
