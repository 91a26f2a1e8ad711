"""The sweep page's plots and table in headless Chromium, over a real SQLite store with real
rows (finished, failed and running trials, their learning curves) and no scheduler: decade ticks
on log axes, no label cut off, curves per trial filtered to the best K, running trials' curves
growing live, a sortable and filterable trials table."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from browser_helpers import clipped, label_boxes, needs_chromium, tick_texts, wait_for

from experiments.service.context import ServiceSettings
from experiments.service.local import LocalService
from experiments.spec import parse_spec
from experiments.store.models import TrialStatus
from experiments.store.repository import Store
from experiments.store.trial_result import TrialResult

pytestmark = [pytest.mark.browser, needs_chromium]

TOY = Path(__file__).resolve().parents[2] / "experiments" / "sweeps" / "toy_chinchilla.yaml"
N_OK, N_FAILED, N_RUNNING, STEPS = 14, 2, 2, 8
FAILED, RUNNING = (3, 9), (6, 12)  # indexes among the 18 trials, the rest succeed


def _loss(n: float, d: float, lr: float) -> float:
    return 1.7 + 400 / n**0.34 + 410 / d**0.28 + 0.3 * math.log(lr / 3e-3) ** 2


def _curve(n: float, d: float, lr: float, steps: int) -> list[dict[str, float]]:
    """Training loss every step, validation loss every other step: two series, never mixed."""
    out = []
    for s in range(1, steps + 1):
        seen = d * s / STEPS
        point = {"step": s, "tokens": seen, "train_loss": _loss(n, seen, lr) - 0.05}
        if s % 2 == 0:
            point["val_loss"] = _loss(n, seen, lr)
        out.append(point)
    return out


def seed(storage: str) -> dict[str, Any]:
    """A running sweep: finished trials across two decades of cost (lr within 1e-3..4e-3, less
    than a decade), failed ones, and running ones with half their curve so far."""
    text = yaml.safe_dump({**yaml.safe_load(TOY.read_text()), "name": "plots"})
    store = Store(storage)
    sweep, _ = store.get_or_create_sweep(
        "plots", parse_spec(text).model_dump(mode="json"), text, owner="alice"
    )
    total = N_OK + N_FAILED + N_RUNNING
    configs = [
        {"n_params": 1e6 * 100 ** (i / (total - 1)), "tokens": 2e7 * 10 ** (i / (total - 1)),
         "learning_rate": 1e-3 * 4 ** ((i * 7 % total) / total)}
        for i in range(total)
    ]  # fmt: skip
    trials = store.create_trials(sweep.id, [(c, None) for c in configs])
    losses, running = {}, []
    for i, (t, c) in enumerate(zip(trials, configs, strict=True)):
        n, d, lr = c["n_params"], c["tokens"], c["learning_rate"]
        if i not in FAILED + RUNNING:
            losses[t.number] = _loss(n, d, lr)
            store.finish_trial(
                t.id, TrialResult(TrialStatus.SUCCEEDED, loss=losses[t.number],
                                  cost_flops=6 * n * d, cost_seconds=1.0 + i,
                                  curve=_curve(n, d, lr, STEPS)),
            )  # fmt: skip
        elif i in FAILED:
            store.finish_trial(
                t.id, TrialResult(TrialStatus.FAILED, cost_flops=6 * n * d,
                                  error="loss diverged (nan)", failure_kind="config",
                                  failure_reason="diverged"),
            )  # fmt: skip
        else:
            store.mark_running(t.id, worker="w")
            store.add_curve_points(t.id, _curve(n, d, lr, STEPS // 2))
            running.append((t.id, t.number, c))
    store.set_sweep_status(sweep.id, "running")
    store.dispose()
    return {"losses": losses, "running": running}


@pytest.fixture
def page(tmp_path: Path, browser: Any) -> Iterator[tuple[Any, str, dict[str, Any]]]:
    storage = f"sqlite:///{tmp_path / 'plots.db'}"
    rows = seed(storage)
    settings = ServiceSettings(storage=storage, run_scheduler=False, cache_dir=tmp_path / "c")
    with LocalService(settings) as svc:
        browser.get(svc.url + "/sweeps/plots")
        wait_for(lambda: browser.find_elements("css selector", "#curves .scatterlayer .trace"))
        yield browser, storage, rows


def _plot(driver: Any, css: str) -> Any:
    return driver.find_element("css selector", css)


DECADE = re.compile(r"^1e-?\d+$|^(1|10|100|1000)$")


def test_log_axes_are_ticked_at_decades_and_no_label_is_clipped(page: Any) -> None:
    driver, _, _ = page
    frontier = _plot(driver, "#frontier")
    # two decades of cost, and the target 1e20 FLOPs: every tick is a power of ten
    xt = tick_texts(driver, frontier, "x")
    assert len(xt) >= 3 and all(DECADE.match(t) for t in xt), xt
    assert "target 1e20 FLOPs" in frontier.text
    n_params = _plot(driver, ".hp-plot[data-param='n_params']")
    yt = tick_texts(driver, n_params, "y")
    assert yt == ["1e6", "1e7", "1e8"], yt
    # the learning rate spans less than a decade: round 1-2-3-5 steps, never the data's values
    lr = tick_texts(driver, _plot(driver, ".hp-plot[data-param='learning_rate']"), "y")
    assert lr == ["1e-3", "2e-3", "3e-3"], lr
    curves = _plot(driver, "#curves")
    assert all(DECADE.match(t) for t in tick_texts(driver, curves, "x"))

    labels = label_boxes(driver, driver.find_element("css selector", "main"))
    plots = {lab["plot"] for lab in labels}
    assert {"frontier", "curves", "n_params", "learning_rate", "tokens"} <= plots
    titles = [lab["text"] for lab in labels if lab["cls"] == "title"]
    assert "training cost (FLOPs)" in titles and "held-out loss (nats per token)" in titles
    assert not clipped(labels), clipped(labels)
    # nothing came from anywhere but the service itself
    origins = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => new URL(e.name).origin)"
    )
    assert set(origins) == {driver.execute_script("return location.origin")}


def _traces(driver: Any) -> list[dict[str, Any]]:
    """The curves plot's traces as drawn: trial, number of points, colour, legend name."""
    return driver.execute_script(
        "return document.getElementById('curves').data.map(t => "
        "({trial: t.meta, n: t.x.length, color: t.line.color, name: t.name}))"
    )


def hover_first_point(driver: Any, plot: str) -> None:
    """Move the real mouse onto the first point of the plot's first line (an offset from the
    centre of Plotly's hover layer, which takes the mouse events)."""
    from selenium.webdriver.common.action_chains import ActionChains

    driver.execute_script("document.querySelector(arguments[0]).scrollIntoView()", plot)
    dx, dy = driver.execute_script(
        "const p = document.querySelector(arguments[0] + ' .scatterlayer .trace path.js-line');"
        "const r = document.querySelector(arguments[0] + ' .nsewdrag').getBoundingClientRect();"
        "const q = p.getPointAtLength(0), m = p.getScreenCTM();"
        "return [q.x * m.a + q.y * m.c + m.e - r.left - r.width / 2,"
        " q.x * m.b + q.y * m.d + m.f - r.top - r.height / 2];",
        plot,
    )
    drag = driver.find_element("css selector", plot + " .nsewdrag")
    ActionChains(driver).move_to_element_with_offset(drag, int(dx), int(dy)).perform()


def _drawn(driver: Any) -> int:
    return len(driver.find_elements("css selector", "#curves .scatterlayer .trace"))


def test_learning_curves_per_trial_best_k_and_running_ones_live(page: Any) -> None:
    from selenium.webdriver.common.by import By

    driver, storage, rows = page
    best = sorted(rows["losses"], key=rows["losses"].get)
    running = [number for _, number, _ in rows["running"]]
    # default: the best 10 finished and every running trial, validation loss only
    wait_for(lambda: _drawn(driver) == 10 + N_RUNNING)
    traces = _traces(driver)
    assert {t["trial"] for t in traces} == set(best[:10]) | set(running)
    assert all(t["n"] == (STEPS if t["trial"] in best else STEPS // 2) // 2 for t in traces)
    assert len({t["color"] for t in traces}) == len(traces)  # one colour per trial
    legend = driver.find_elements(By.CSS_SELECTOR, "#curves .legend .traces")
    assert len(legend) == len(traces)
    assert "validation loss" in _plot(driver, "#curves .g-ytitle").text
    # the mouse on a curve's first point: which trial, how far, what loss
    hover_first_point(driver, "#curves")
    tip = wait_for(lambda: _plot(driver, "#curves .hoverlayer .hovertext").text)
    assert re.search(r"trial \d+ \((succeeded|running)\)", tip) and "validation loss" in tip

    topk = driver.find_element(By.ID, "curve-topk")
    topk.clear()
    topk.send_keys("3")
    wait_for(lambda: _drawn(driver) == 3 + N_RUNNING)
    driver.find_element(By.ID, "curve-running").click()
    wait_for(lambda: _drawn(driver) == 3)
    assert [t["trial"] for t in _traces(driver)] == best[:3]
    assert "the best 3 of 14 finished" in driver.find_element(By.ID, "curve-count").text

    # training loss is its own plot: every step, never mixed with the validation points
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element(By.ID, "curve-metric")).select_by_value("train_loss")
    wait_for(lambda: "training loss" in _plot(driver, "#curves .g-ytitle").text)
    assert all(t["n"] == STEPS for t in _traces(driver))

    # a running trial reports two more points: the open page draws them within a poll or two
    driver.find_element(By.ID, "curve-running").click()
    trial_id, number, c = rows["running"][0]
    n_before = next(t["n"] for t in _traces(driver) if t["trial"] == number)
    store = Store(storage)
    more = _curve(c["n_params"], c["tokens"], c["learning_rate"], STEPS)[
        STEPS // 2 : STEPS // 2 + 2
    ]
    store.add_curve_points(trial_id, more)
    store.dispose()
    wait_for(
        lambda: next(t["n"] for t in _traces(driver) if t["trial"] == number) == n_before + 2,
        timeout=15,
    )


def _column(driver: Any, index: int) -> list[str]:
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#trials-table tbody tr'))"
        f".map(r => r.cells[{index}].textContent)"
    )


def test_trials_table_sorts_on_click_and_filters(page: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver, _, rows = page
    total = N_OK + N_FAILED + N_RUNNING
    wait_for(lambda: len(_column(driver, 0)) == total)
    heads = [th.text for th in driver.find_elements(By.CSS_SELECTOR, "#trials-table thead th")]
    loss_col = heads.index("loss")
    driver.find_element(By.CSS_SELECTOR, "#trials-table th[data-key='loss'] button").click()
    losses = [float(v) for v in _column(driver, loss_col) if v]
    assert losses == sorted(losses) and len(losses) == N_OK
    assert _column(driver, loss_col)[-1] == ""  # trials without a loss sort last
    th = driver.find_element(By.CSS_SELECTOR, "#trials-table th[data-key='loss']")
    assert th.get_attribute("aria-sort") == "ascending"
    th.find_element(By.TAG_NAME, "button").click()
    losses = [float(v) for v in _column(driver, loss_col) if v]
    assert losses == sorted(losses, reverse=True)

    box = driver.find_element(By.ID, "trials-filter")
    box.send_keys("diverged")
    wait_for(lambda: len(_column(driver, 0)) == N_FAILED)
    assert set(_column(driver, heads.index("status"))) == {"failed"}
    assert driver.find_element(By.ID, "trials-count").text == f"{N_FAILED} of {total} trials"
    box.clear()
    box.send_keys(" ")  # clear() fires no input event
    Select(driver.find_element(By.ID, "trials-status")).select_by_value("running")
    wait_for(lambda: len(_column(driver, 0)) == N_RUNNING)
    assert sorted(int(v) for v in _column(driver, 0)) == sorted(n for _, n, _ in rows["running"])
