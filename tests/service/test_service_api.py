"""The HTTP API against a real server on localhost (scheduler off: no Ray needed here)."""

from __future__ import annotations

import numpy as np
import yaml
from service_helpers import LiveServer, seed_sweep, toy_spec

from carbs.pareto import pareto_mask
from experiments.store.repository import Store


def test_reading_needs_no_token_and_lists_every_sweep(live_server: LiveServer) -> None:
    seed_sweep(live_server.storage, "alice-sweep", "alice", n=6)
    with live_server.client() as c:
        rows = c.get("/api/sweeps").json()
        detail = c.get("/api/sweeps/alice-sweep").json()
    assert [r["name"] for r in rows] == ["alice-sweep"]
    assert rows[0]["owner"] == "alice"
    assert rows[0]["n_trials"] == 6
    assert detail["status"] == "finished"
    assert "search_space" in detail["spec"]


def test_submitting_without_a_valid_token_is_401(live_server: LiveServer) -> None:
    body = {"spec_yaml": toy_spec("nope")}
    with live_server.client() as c:
        assert c.post("/api/sweeps", json=body).status_code == 401
        bad = c.post("/api/sweeps", json=body, headers={"Authorization": "Bearer carbs_x_y"})
        forged = live_server.tokens["alice"][:-4] + "AAAA"
        wrong = c.post("/api/sweeps", json=body, headers={"Authorization": f"Bearer {forged}"})
        assert c.get("/api/sweeps").json() == []
    assert bad.status_code == 401
    assert wrong.status_code == 401
    assert bad.headers["www-authenticate"] == "Bearer"


def test_a_bad_spec_answers_422_with_field_paths_and_fixes(live_server: LiveServer) -> None:
    data = yaml.safe_load(toy_spec("bad"))
    data["budget"]["max_trials"] = 0
    data["search_space"]["learning_rate"]["min"] = 1.0  # above max
    with live_server.client("alice") as c:
        r = c.post("/api/sweeps", json={"spec_yaml": yaml.safe_dump(data)})
        not_yaml = c.post("/api/sweeps", json={"spec_yaml": "name: [unclosed"})
        bad_fn = c.post(
            "/api/sweeps",
            json={"spec_yaml": toy_spec("f").replace("chinchilla_toy", "no_such_function")},
        )
    assert r.status_code == 422
    errors = {e["field"]: e["message"] for e in r.json()["detail"]["errors"]}
    assert "budget.max_trials" in errors and "greater than 0" in errors["budget.max_trials"]
    assert "search_space.learning_rate" in errors
    assert "must be below `max`" in errors["search_space.learning_rate"]
    assert not_yaml.status_code == 422 and "not valid YAML" in not_yaml.json()["detail"]["message"]
    assert bad_fn.status_code == 422
    assert bad_fn.json()["detail"]["errors"][0]["field"] == "workload.function"


def test_only_the_owner_may_resubmit_or_cancel_a_sweep(live_server: LiveServer) -> None:
    with live_server.client("alice") as alice, live_server.client("bob") as bob:
        created = alice.post("/api/sweeps", json={"spec_yaml": toy_spec("shared")})
        again = alice.post("/api/sweeps", json={"spec_yaml": toy_spec("shared")})
        steal = bob.post("/api/sweeps", json={"spec_yaml": toy_spec("shared")})
        bob_cancel = bob.post("/api/sweeps/shared/cancel")
        anon_cancel = live_server.client().post("/api/sweeps/shared/cancel")
        cancel = alice.post("/api/sweeps/shared/cancel")
        twice = alice.post("/api/sweeps/shared/cancel")
        resumed = alice.post("/api/sweeps", json={"spec_yaml": toy_spec("shared")})
    assert created.status_code == 201
    assert created.json()["owner"] == "alice" and created.json()["status"] == "queued"
    assert again.status_code == 409  # still queued
    assert steal.status_code == 403 and "alice" in steal.json()["detail"]
    assert bob_cancel.status_code == 403
    assert anon_cancel.status_code == 401
    assert cancel.status_code == 200 and cancel.json()["status"] == "cancelled"
    assert twice.status_code == 409
    assert resumed.status_code == 201 and resumed.json()["resumed"] is True
    assert Store(live_server.storage).require_sweep("shared").status == "queued"


def test_changing_the_search_space_of_a_stored_sweep_is_409(live_server: LiveServer) -> None:
    seed_sweep(live_server.storage, "mine", "alice", n=3)
    data = yaml.safe_load(toy_spec("mine"))
    data["search_space"]["learning_rate"]["max"] = 0.1
    with live_server.client("alice") as c:
        r = c.post("/api/sweeps", json={"spec_yaml": yaml.safe_dump(data)})
    assert r.status_code == 409 and "search_space" in r.json()["detail"]


def test_upload_accepts_a_yaml_file(live_server: LiveServer) -> None:
    with live_server.client("bob") as c:
        r = c.post("/api/sweeps/upload", files={"spec": ("up.yaml", toy_spec("uploaded"))})
    assert r.status_code == 201 and r.json()["owner"] == "bob"


def test_unknown_sweeps_and_trials_are_404(live_server: LiveServer) -> None:
    seed_sweep(live_server.storage, "s", "alice", n=3)
    with live_server.client("alice") as c:
        assert c.get("/api/sweeps/ghost").status_code == 404
        assert c.get("/api/sweeps/ghost/frontier").status_code == 404
        assert c.post("/api/sweeps/ghost/cancel").status_code == 404
        assert c.get("/api/sweeps/s/trials/99").status_code == 404
        assert c.get("/api/sweeps/s/trials/0").json()["number"] == 0


def test_frontier_flags_match_the_pareto_mask(live_server: LiveServer) -> None:
    seed_sweep(live_server.storage, "fr", "alice")
    with live_server.client() as c:
        fr = c.get("/api/sweeps/fr/frontier").json()
        trials = c.get("/api/sweeps/fr/trials", params={"status": "failed"}).json()
    pts = fr["points"]
    mask = pareto_mask(np.array([p["cost"] for p in pts]), np.array([p["loss"] for p in pts]))
    assert [p["frontier"] for p in pts] == mask.tolist()
    assert len(fr["failed"]) == len(trials) > 0
    assert all(t["status"] == "failed" and "diverged" in t["error"] for t in trials)
    assert set(pts[0]["params"]) == {"n_params", "tokens", "learning_rate"}


def test_trial_detail_and_curves_carry_the_learning_curve(live_server: LiveServer) -> None:
    seed_sweep(live_server.storage, "cv", "alice", n=4)
    with live_server.client() as c:
        trial = c.get("/api/sweeps/cv/trials/0").json()
        curves = c.get("/api/sweeps/cv/curves").json()
        ok = c.get("/api/sweeps/cv/trials", params={"status": "succeeded"}).json()
    assert [p["step"] for p in trial["curve"]] == [1, 2, 3]
    losses = [p["val_loss"] for p in trial["curve"]]
    assert losses == sorted(losses, reverse=True)  # more tokens, lower toy loss
    assert {c["number"] for c in curves} == {t["number"] for t in ok}  # diverged: no curve
    assert 0 < len(ok) < 4


def test_frontier_plot_is_served_as_png_and_svg(live_server: LiveServer) -> None:
    seed_sweep(live_server.storage, "pl", "alice", n=6)
    with live_server.client() as c:
        png = c.get("/api/sweeps/pl/plots/frontier.png")
        svg = c.get("/api/sweeps/pl/plots/frontier.svg")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG")
    assert svg.headers["content-type"].startswith("image/svg+xml") and b"<svg" in svg.content


def test_fit_predict_and_export_agree_and_reads_write_nothing(live_server: LiveServer) -> None:
    seed_sweep(live_server.storage, "fx", "alice")
    with live_server.client() as c:
        fit = c.get("/api/sweeps/fx/fit").json()
        fr = c.get("/api/sweeps/fx/frontier").json()
        front = sorted((p for p in fr["points"] if p["frontier"]), key=lambda p: p["cost"])
        costs = [p["cost"] for p in front] + [1e20]
        pred = c.get("/api/sweeps/fx/predict", params={"flops": costs}).json()
        export = c.get("/api/sweeps/fx/export/yaml")
        again = c.get("/api/sweeps/fx/export/yaml")
        listed = c.get("/api/sweeps/fx/exports").json()
        wrong = c.get("/api/sweeps/fx/export/hf-dbrx")
        refit = c.get("/api/sweeps/fx/fit").json()
    lo, hi = fit["predicted_loss_ci"]
    assert lo <= fit["predicted_loss"] <= hi
    assert fit["fit_id"] is None  # computed for the readers, not stored
    assert refit == fit  # nothing new observed: the same pick, from the cache
    assert set(fit["params"]) == {"n_params", "tokens", "learning_rate"}
    losses = [p["loss"] for p in pred["predictions"]]
    assert losses == sorted(losses, reverse=True)  # more compute, lower frontier loss
    for p, q in zip(front, pred["predictions"], strict=False):  # the law fits its own points
        assert abs(q["loss"] - p["loss"]) / p["loss"] < 0.1
        assert q["lo"] is None or q["lo"] <= q["loss"] <= q["hi"]
    assert pred["target_loss"] == fit["predicted_loss"]
    assert export.status_code == 200
    assert export.headers["content-disposition"] == 'attachment; filename="fx-large_run.yaml"'
    assert yaml.safe_load(export.text)["params"] == fit["params"]
    assert listed["formats"] == ["yaml"]  # a callable workload has no production formats
    assert listed["exports"] == []  # anonymous reads stored no export...
    assert again.text == export.text
    assert wrong.status_code == 422
    store = Store(live_server.storage)
    sweep = store.require_sweep("fx")
    assert store.latest_fit(sweep.id) is None  # ...and no fit
    store.dispose()


def test_fit_of_a_sweep_without_successes_is_409(live_server: LiveServer) -> None:
    seed_sweep(live_server.storage, "empty", "alice", n=0)
    with live_server.client() as c:
        r = c.get("/api/sweeps/empty/fit")
        e = c.get("/api/sweeps/empty/export/yaml")
    assert r.status_code == 409 and "no successful trial" in r.json()["detail"]
    assert e.status_code == 409


def test_openapi_schema_documents_the_api(live_server: LiveServer) -> None:
    with live_server.client() as c:
        schema = c.get("/openapi.json").json()
    paths = schema["paths"]
    assert "/api/sweeps" in paths and "post" in paths["/api/sweeps"]
    assert "/api/sweeps/{name}/cancel" in paths
    assert "HTTPBearer" in schema["components"]["securitySchemes"]
    assert "422" in paths["/api/sweeps"]["post"]["responses"]
