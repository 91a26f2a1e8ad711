"""Server-rendered dashboard pages over a live service: content, escaping, and no internet."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from experiments.service.context import ServiceSettings
from experiments.service.local import LocalService
from experiments.service.web import STATIC_DIR, TEMPLATES_DIR
from experiments.spec import parse_spec
from experiments.store.models import TrialStatus
from experiments.store.repository import Store
from experiments.store.trial_result import TrialResult

TOY = Path(__file__).resolve().parents[2] / "experiments" / "sweeps" / "toy_chinchilla.yaml"


def _store_sweep(storage: str, name: str, description: str, losses: list[float]) -> None:
    data = yaml.safe_load(TOY.read_text())
    data.update(name=name, description=description)
    text = yaml.safe_dump(data)
    store = Store(storage)
    sweep, _ = store.get_or_create_sweep(
        name, parse_spec(text).model_dump(mode="json"), text, owner="alice"
    )
    params = {"n_params": 1e6, "tokens": 1e7, "learning_rate": 1e-3}
    trials = store.create_trials(sweep.id, [(dict(params), None) for _ in losses])
    for i, (t, loss) in enumerate(zip(trials, losses, strict=True)):
        store.finish_trial(
            t.id, TrialResult(TrialStatus.SUCCEEDED, loss=loss, cost_flops=1e12 * (i + 1))
        )
    store.set_sweep_status(sweep.id, "finished")
    store.dispose()


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[str, str]]:
    storage = f"sqlite:///{tmp_path / 'pages.db'}"
    Store(storage).dispose()
    settings = ServiceSettings(storage=storage, run_scheduler=False, cache_dir=tmp_path / "c")
    with LocalService(settings) as svc:
        yield svc.url, storage


def test_sweeps_page_lists_every_sweep_with_counts(service: tuple[str, str]) -> None:
    url, storage = service
    empty = httpx.get(url + "/").text
    assert 'id="no-sweeps"' in empty and "carbs submit" in empty
    _store_sweep(storage, "first", "the first one", [3.0, 2.5])
    _store_sweep(storage, "second", "", [4.0])
    page = httpx.get(url + "/").text
    assert '<a href="/sweeps/first">first</a>' in page
    assert '<a href="/sweeps/second">second</a>' in page
    assert "2.5000" in page  # best loss of `first`
    assert 'http-equiv="refresh"' not in page  # nothing live: no reloading


def test_sweeps_page_reloads_itself_while_a_sweep_is_live(service: tuple[str, str]) -> None:
    url, storage = service
    _store_sweep(storage, "live", "", [3.0])
    store = Store(storage)
    store.set_sweep_status(store.require_sweep("live").id, "running")
    store.dispose()
    assert 'http-equiv="refresh"' in httpx.get(url + "/").text


def test_sweep_page_has_every_panel_and_escapes_user_text(service: tuple[str, str]) -> None:
    url, storage = service
    _store_sweep(storage, "xss", "<script>alert(1)</script>", [3.0])
    page = httpx.get(url + "/sweeps/xss")
    assert page.status_code == 200
    for panel in ("frontier", "hp-plots", "scaling-plots", "curves", "trials-table", "exports"):
        assert f'id="{panel}"' in page.text
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


def test_a_missing_sweep_is_a_readable_page_and_stays_json_in_the_api(
    service: tuple[str, str],
) -> None:
    url, storage = service
    _store_sweep(storage, "real", "", [3.0])
    page = httpx.get(url + "/sweeps/ghost", headers={"Accept": "text/html"})
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "No sweep named 'ghost'." in html.unescape(page.text) and '{"detail"' not in page.text
    assert '<a href="/sweeps/real">real</a>' in page.text and 'href="/"' in page.text
    unknown = httpx.get(url + "/no/such/page", headers={"Accept": "text/html"})
    assert unknown.status_code == 404 and "There is no page at /no/such/page." in unknown.text
    api = httpx.get(url + "/api/sweeps/ghost", headers={"Accept": "text/html"})
    assert api.status_code == 404 and "no sweep named 'ghost'" in api.json()["detail"]


def test_compare_page_names_unknown_sweeps(service: tuple[str, str]) -> None:
    url, storage = service
    _store_sweep(storage, "a", "", [3.0])
    page = httpx.get(url + "/compare", params={"names": "a,nope"}).text
    assert 'data-compare="a"' in page and "unknown sweeps: nope" in page


def test_api_docs_page_lists_operations_without_a_cdn(service: tuple[str, str]) -> None:
    url, _ = service
    page = httpx.get(url + "/api-docs").text
    assert "/api/sweeps/{name}/cancel" in page
    assert httpx.get(url + "/docs").status_code == 404  # the CDN-backed Swagger UI is off


def test_dashboard_assets_are_served_and_fetch_nothing_from_the_internet(
    service: tuple[str, str],
) -> None:
    url, _ = service
    files = [*TEMPLATES_DIR.glob("*.html"), *(p for p in STATIC_DIR.glob("*") if p.is_file())]
    assert {p.name for p in files} >= {"sweep.html", "dashboard.js", "plot.js", "style.css"}
    external = re.compile(
        r"""(src|href)\s*=\s*["']?(https?:)?//|url\(\s*["']?(https?:)?//|@import"""
    )
    for p in files:  # the vendored bundles are checked in the browser (no request leaves)
        assert not external.search(p.read_text()), f"{p.name} loads something from the internet"
    for name in ("dashboard.js", "plot.js", "compare.js", "curves.js", "trials_table.js"):
        r = httpx.get(f"{url}/static/{name}")
        assert r.status_code == 200 and len(r.content) > 500
    vendor = STATIC_DIR / "vendor"
    assert (vendor / "plotly-LICENSE.txt").read_text().startswith("MIT License")
    r = httpx.get(f"{url}/static/vendor/plotly-basic.min.js")
    assert r.status_code == 200 and b"plotly.js (basic - minified) v4" in r.content[:200]
