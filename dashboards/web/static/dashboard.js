/* The sweep page: polls the JSON API and redraws the frontier, hyperparameters against cost,
 * learning curves and the trials table whenever a trial finishes. */
(function () {
  "use strict";
  var P = window.CarbsPlot, esc = P.esc, fmt = P.fmt;
  var name = document.body.getAttribute("data-sweep");
  var api = "/api/sweeps/" + encodeURIComponent(name);
  var POLL_MS = 2000, IDLE_POLL_MS = 8000, LIVE = { created: 1, queued: 1, running: 1, cancel_requested: 1 };
  var version = null, pinned = null, fitted = false;

  function getJSON(url) {
    return fetch(url, { headers: { Accept: "application/json" } }).then(function (r) {
      return r.json().then(function (body) { return { ok: r.ok, status: r.status, body: body }; });
    });
  }

  function showDetails(p, pin) {
    if (pinned && !pin) return;
    var d = p.data;
    var box = document.getElementById("point-details");
    box.innerHTML = "<h3>trial " + esc(d.number) + (d.frontier ? " <span class='status status-succeeded'>frontier</span>" : "") +
      (pin ? " <a href='#' id='unpin' class='small'>unpin</a>" : "") + "</h3>" +
      "<p>cost <b>" + fmt(d.cost) + "</b> FLOPs · loss <b>" + (d.loss === undefined ? "failed" : fmt(d.loss)) + "</b></p>" +
      (d.error ? "<p class='error small'>" + esc(d.error) + "</p>" : "") + P.paramsTable(d.params);
    if (pin) {
      pinned = d.number;
      document.getElementById("unpin").addEventListener("click", function (e) { e.preventDefault(); pinned = null; });
    }
  }

  function drawFrontier(fr) {
    var ok = fr.points, front = ok.filter(function (p) { return p.frontier; });
    front.sort(function (a, b) { return a.cost - b.cost; });
    var maxLoss = ok.length ? Math.max.apply(null, ok.map(function (p) { return p.loss; })) : 1;
    var series = [
      { name: "trials (" + ok.length + ")", color: "#9aa5b1", cls: "trial",
        points: ok.filter(function (p) { return !p.frontier; }).map(function (p) { return { x: p.cost, y: p.loss, data: p }; }) },
      { name: "frontier (" + front.length + ")", color: "#d1495b", r: 5, line: true, cls: "frontier",
        points: front.map(function (p) { return { x: p.cost, y: p.loss, data: p }; }) },
      { name: fr.failed.length ? "failed (" + fr.failed.length + ")" : "", color: "#1f2933", marker: "cross", cls: "failed",
        points: fr.failed.filter(function (f) { return f.cost; }).map(function (f) {
          return { x: f.cost, y: maxLoss, data: { number: f.number, cost: f.cost, params: f.params, error: f.error } }; }) }
    ];
    P.draw(document.getElementById("frontier"), {
      id: "frontier-svg", width: 660, height: 400, xlog: true, ylog: false,
      xlabel: "training cost (FLOPs)", ylabel: "loss", series: series,
      tip: function (p) { return "trial " + p.data.number + "<br>cost " + fmt(p.data.cost) + "<br>loss " + (p.data.loss === undefined ? "failed" : fmt(p.data.loss)); },
      onHover: function (p) { showDetails(p, false); },
      onClick: function (p) { pinned = null; showDetails(p, true); }
    });
  }

  function drawHyperparams(fr) {
    var box = document.getElementById("hp-plots");
    box.innerHTML = "";
    Object.keys(fr.params).forEach(function (k) {
      var kind = fr.params[k].kind;
      var pts = fr.points.filter(function (p) { return typeof p.params[k] === "number"; });
      if (kind === "categorical" || !pts.length) return;
      var div = document.createElement("div");
      div.className = "plot hp-plot";
      div.setAttribute("data-param", k);
      box.appendChild(div);
      P.draw(div, {
        width: 320, height: 220, xlog: true, ylog: kind === "log", title: k, legend: false,
        xlabel: "cost (FLOPs)", ylabel: "",
        series: [
          { color: "#9aa5b1", r: 3, points: pts.filter(function (p) { return !p.frontier; }).map(function (p) { return { x: p.cost, y: p.params[k], data: p }; }) },
          { color: "#d1495b", r: 4, points: pts.filter(function (p) { return p.frontier; }).map(function (p) { return { x: p.cost, y: p.params[k], data: p }; }) }
        ],
        tip: function (p) { return "trial " + p.data.number + "<br>" + esc(k) + " " + fmt(p.y) + "<br>loss " + fmt(p.data.loss); },
        onClick: function (p) { pinned = null; showDetails(p, true); }
      });
    });
  }

  function drawCurves(curves) {
    var box = document.getElementById("curves");
    if (!curves.length) { box.innerHTML = "<p class='muted'>No learning curves reported (the workload reports none).</p>"; return; }
    var useTokens = curves.every(function (c) { return c.points.every(function (q) { return q.tokens; }); });
    var series = curves.map(function (c) {
      var pts = c.points.map(function (q) {
        var y = q.val_loss !== null ? q.val_loss : q.train_loss;
        return { x: useTokens ? q.tokens : Math.max(q.step, 1), y: y, data: { number: c.number } };
      }).filter(function (q) { return q.y !== null; });
      return { color: c.status === "succeeded" ? "rgba(31,119,180,.55)" : "rgba(209,73,91,.7)", line: true, width: 1.2,
        marker: "none", points: pts };
    });
    P.draw(box, { width: 660, height: 320, xlog: true, ylog: false, legend: false,
      xlabel: useTokens ? "tokens" : "step", ylabel: "loss", series: series });
  }

  function drawTrials(trials) {
    var names = {};
    trials.forEach(function (t) { Object.keys(t.params).forEach(function (k) { names[k] = 1; }); });
    var cols = Object.keys(names).sort();
    var table = document.getElementById("trials-table");
    table.tHead.innerHTML = "<tr><th>#</th><th>status</th><th>loss</th><th>cost (FLOPs)</th><th>seconds</th>" +
      cols.map(function (c) { return "<th>" + esc(c) + "</th>"; }).join("") + "<th>error</th></tr>";
    table.tBodies[0].innerHTML = trials.slice().reverse().map(function (t) {
      return "<tr data-trial='" + t.number + "'><td>" + t.number + "</td><td><span class='status status-" + esc(t.status) + "'>" +
        esc(t.status) + "</span></td><td>" + fmt(t.loss) + "</td><td>" + fmt(t.cost_flops) + "</td><td>" + fmt(t.cost_seconds) + "</td>" +
        cols.map(function (c) { var v = t.params[c]; return "<td>" + esc(typeof v === "number" ? fmt(v) : (v === undefined ? "" : v)) + "</td>"; }).join("") +
        "<td class='err'>" + esc(t.error ? (t.failure_reason ? "[" + t.failure_reason + "] " : "") + t.error.split("\n")[0] : "") + "</td></tr>";
    }).join("");
  }

  function drawSummary(sw) {
    var st = document.getElementById("sweep-status");
    st.textContent = sw.status; st.className = "status status-" + sw.status;
    document.getElementById("n-trials").textContent = sw.n_trials;
    document.getElementById("best-loss").textContent = sw.best_loss === null ? "-" : sw.best_loss.toFixed(4);
    var ev = document.getElementById("live-events");
    ev.textContent = sw.live && sw.live.events && sw.live.events.length ? "latest: " + sw.live.events[sw.live.events.length - 1] :
      (sw.live && sw.live.error ? "error: " + sw.live.error : "");
  }

  function loadFit() {
    var status = document.getElementById("fit-status");
    status.textContent = "fitting the scaling laws (bootstrapped; may take a few seconds)…";
    return getJSON(api + "/fit").then(function (r) {
      if (!r.ok) { status.textContent = r.body.detail || "no fit yet"; return; }
      var f = r.body, ci = f.predicted_loss_ci || [null, null];
      status.textContent = "fit #" + f.fit_id + " on the current trials";
      document.getElementById("pick").innerHTML =
        "<p>Large run at <b>" + fmt(f.target_flops) + "</b> FLOPs: predicted loss <b id='predicted-loss'>" + fmt(f.predicted_loss) +
        "</b> (90% interval " + fmt(ci[0]) + " … " + fmt(ci[1]) + ")</p>" +
        (f.warnings && f.warnings.length ? "<ul class='small'>" + f.warnings.map(function (w) { return "<li>" + esc(w) + "</li>"; }).join("") + "</ul>" : "") +
        "<details open><summary>large-run config</summary>" + P.paramsTable(f.params) + "</details>";
      fitted = true;
      return getJSON(api + "/plots/scaling").then(function (pr) {
        var box = document.getElementById("scaling-plots");
        if (!pr.ok) { box.innerHTML = "<p class='muted'>" + esc(pr.body.detail || "") + "</p>"; return; }
        var stamp = "?fit=" + f.fit_id;
        box.innerHTML = pr.body.plots.map(function (p) {
          return "<figure><img alt='" + esc(p.name) + "' src='" + p.png + stamp + "'><figcaption class='small'>" + esc(p.name) +
            " · <a href='" + p.svg + stamp + "'>SVG</a></figcaption></figure>";
        }).join("");
      });
    }).catch(function (e) { status.textContent = "fit failed: " + e; });
  }

  function loadExports() {
    getJSON(api + "/exports").then(function (r) {
      if (!r.ok) return;
      document.getElementById("export-buttons").innerHTML = r.body.formats.map(function (f) {
        return "<a class='button export-link' download data-format='" + esc(f) + "' href='" + api + "/export/" + encodeURIComponent(f) + "'>" +
          esc(f) + "</a> ";
      }).join("") + "<span class='muted small'>(fits the scaling laws first if needed)</span>";
    });
  }

  function refresh() {
    return Promise.all([getJSON(api + "/frontier"), getJSON(api)]).then(function (res) {
      var fr = res[0].body, sw = res[1].body;
      if (!res[0].ok || !res[1].ok) return;
      drawSummary(sw);
      if (fr.version !== version) {
        version = fr.version;
        fitted = false;  // new observations: the fit (once the sweep rests) is stale
        drawFrontier(fr);
        drawHyperparams(fr);
        getJSON(api + "/trials").then(function (r) { if (r.ok) drawTrials(r.body); });
        getJSON(api + "/curves").then(function (r) { if (r.ok) drawCurves(r.body); });
        if (!fitted && !LIVE[sw.status] && fr.points.length >= 3) loadFit();
      }
      setTimeout(refresh, LIVE[sw.status] ? POLL_MS : IDLE_POLL_MS);  // a resumed sweep comes alive again
    }).catch(function () { setTimeout(refresh, POLL_MS * 3); });
  }

  document.getElementById("fit-button").addEventListener("click", loadFit);
  var tokenInput = document.getElementById("token-input");
  try { tokenInput.value = localStorage.getItem("carbs-token") || ""; } catch (e) { /* private mode */ }
  document.getElementById("cancel-button").addEventListener("click", function () {
    var token = tokenInput.value.trim(), out = document.getElementById("manage-status");
    try { localStorage.setItem("carbs-token", token); } catch (e) { /* private mode */ }
    fetch(api + "/cancel", { method: "POST", headers: { Authorization: "Bearer " + token } })
      .then(function (r) { return r.json().then(function (b) { return { ok: r.ok, body: b }; }); })
      .then(function (r) { out.textContent = r.ok ? "sweep " + r.body.status : String(r.body.detail); version = null; refresh(); });
  });
  loadExports();
  refresh();
})();
