/* The sweep page: polls the JSON API and redraws the frontier and hyperparameters against cost
 * whenever a trial finishes (Plotly, via plot.js), and the trials table (trials_table.js) and
 * learning curves (curves.js) on every poll while anything runs. */
(function () {
  "use strict";
  var P = window.CarbsPlot, esc = P.esc, fmt = P.fmt;
  var name = document.body.getAttribute("data-sweep");
  var api = "/api/sweeps/" + encodeURIComponent(name);
  var POLL_MS = 2000, IDLE_POLL_MS = 8000, LIVE = { created: 1, queued: 1, running: 1, cancel_requested: 1 };
  var version = null, pinned = null, fitted = false, anyRunning = false;

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

  /* Points of one frontier trace, with the trial in `customdata` for hover and click. */
  function pointTrace(name, pts, style) {
    var t = { type: "scatter", mode: style.mode || "markers", name: name, x: pts.map(function (p) { return p.x; }),
      y: pts.map(function (p) { return p.y; }), customdata: pts.map(function (p) { return p.data; }),
      marker: style.marker, line: style.line, hovertemplate: style.hover };
    return t;
  }

  function drawFrontier(fr) {
    var ok = fr.points, front = ok.filter(function (p) { return p.frontier; });
    front.sort(function (a, b) { return a.cost - b.cost; });
    var maxLoss = ok.length ? Math.max.apply(null, ok.map(function (p) { return p.loss; })) : 1;
    var xy = function (p) { return { x: p.cost, y: p.loss, data: p }; };
    var hover = "trial %{customdata.number}<br>cost %{x:.3s} FLOPs<br>loss %{y:.4f}<extra></extra>";
    var failed = fr.failed.filter(function (f) { return f.cost; }).map(function (f) {
      return { x: f.cost, y: maxLoss, data: { number: f.number, cost: f.cost, params: f.params, error: f.error } }; });
    var traces = [
      pointTrace("trials (" + ok.length + ")", ok.filter(function (p) { return !p.frontier; }).map(xy),
        { marker: { color: "#9aa5b1", size: 7 }, hover: hover }),
      pointTrace("Pareto frontier (" + front.length + ")", front.map(xy),
        { mode: "lines+markers", marker: { color: "#d1495b", size: 9 }, line: { color: "#d1495b", width: 2 }, hover: hover })
    ];
    if (failed.length) traces.push(pointTrace("failed (" + failed.length + ", drawn at the worst loss)", failed,
      { marker: { color: "#1f2933", symbol: "x", size: 9 }, hover: "trial %{customdata.number} failed<br>cost %{x:.3s} FLOPs<extra></extra>" }));
    var xs = ok.map(function (p) { return p.cost; }).concat(failed.map(function (p) { return p.x; }));
    var shapes = [], annotations = [];
    if (fr.target_flops) {
      xs.push(fr.target_flops);
      shapes.push({ type: "line", xref: "x", yref: "paper", x0: fr.target_flops, x1: fr.target_flops, y0: 0, y1: 1,
        line: { color: "#616e7c", width: 1.2, dash: "dash" } });
      annotations.push({ x: Math.log10(fr.target_flops), y: 1, xref: "x", yref: "paper", text: "target " + P.tickLabel(fr.target_flops) + " FLOPs",
        showarrow: false, xanchor: "right", yanchor: "top", font: { size: 10, color: "#616e7c" } });
    }
    var box = document.getElementById("frontier");
    P.plot(box, traces, {
      height: 420, xaxis: P.axis("training cost (FLOPs)", xs, { log: true }),
      yaxis: P.axis("held-out loss (nats per token)", ok.map(function (p) { return p.loss; })),
      shapes: shapes, annotations: annotations, legend: { x: 0.01, y: 0.01, xanchor: "left", yanchor: "bottom", bgcolor: "rgba(255,255,255,.8)" }
    }).then(function () {
      if (box.getAttribute("data-wired")) return;
      box.setAttribute("data-wired", "1");
      box.on("plotly_hover", function (ev) { showDetails({ data: ev.points[0].customdata }, false); });
      box.on("plotly_click", function (ev) { pinned = null; showDetails({ data: ev.points[0].customdata }, true); });
    });
  }

  function drawHyperparams(fr) {
    var box = document.getElementById("hp-plots");
    var keep = {};
    Object.keys(fr.params).forEach(function (k) {
      var kind = fr.params[k].kind;
      var pts = fr.points.filter(function (p) { return typeof p.params[k] === "number"; });
      if (kind === "categorical" || !pts.length) return;
      keep[k] = 1;
      var div = box.querySelector(".hp-plot[data-param='" + CSS.escape(k) + "']");
      if (!div) {
        div = document.createElement("div");
        div.className = "plot hp-plot";
        div.setAttribute("data-param", k);
        box.appendChild(div);
      }
      var hover = "trial %{customdata.number}<br>" + esc(k) + " %{y:.4g}<br>cost %{x:.3s} FLOPs<br>loss %{customdata.loss:.4f}<extra></extra>";
      var xy = function (p) { return { x: p.cost, y: p.params[k], data: p }; };
      var traces = [
        pointTrace("trials", pts.filter(function (p) { return !p.frontier; }).map(xy), { marker: { color: "#9aa5b1", size: 6 }, hover: hover }),
        pointTrace("frontier", pts.filter(function (p) { return p.frontier; }).map(xy), { marker: { color: "#d1495b", size: 7 }, hover: hover })
      ];
      P.plot(div, traces, {
        width: 330, height: 250, showlegend: false, title: { text: esc(k), font: { size: 12 }, x: 0.02 },
        margin: { l: 10, r: 10, t: 28, b: 10 },
        xaxis: P.axis("cost (FLOPs)", pts.map(function (p) { return p.cost; }), { log: true }),
        yaxis: P.axis(k, pts.map(function (p) { return p.params[k]; }), { log: kind === "log", integer: kind === "int" })
      }).then(function () {
        if (div.getAttribute("data-wired")) return;
        div.setAttribute("data-wired", "1");
        div.on("plotly_click", function (ev) { pinned = null; showDetails({ data: ev.points[0].customdata }, true); });
      });
    });
    Array.prototype.forEach.call(box.querySelectorAll(".hp-plot"), function (d) {
      if (!keep[d.getAttribute("data-param")]) { window.Plotly.purge(d); d.remove(); }
    });
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

  /* Trials and curves are read on every poll while the sweep is live or a trial still runs:
   * a running trial's curve grows without any trial finishing. */
  function refreshTrials() {
    return Promise.all([getJSON(api + "/trials"), getJSON(api + "/curves")]).then(function (res) {
      if (res[0].ok) table.update(res[0].body);
      if (res[1].ok) curves.update(res[1].body);
      return res[0].ok && res[0].body.some(function (t) { return t.status === "running"; });
    });
  }

  function refresh() {
    return Promise.all([getJSON(api + "/frontier"), getJSON(api)]).then(function (res) {
      var fr = res[0].body, sw = res[1].body;
      if (!res[0].ok || !res[1].ok) return;
      drawSummary(sw);
      var news = fr.version !== version;
      if (news) {
        version = fr.version;
        fitted = false;  // new observations: the fit (once the sweep rests) is stale
        drawFrontier(fr);
        drawHyperparams(fr);
        if (!fitted && !LIVE[sw.status] && fr.points.length >= 3) loadFit();
      }
      var reads = news || LIVE[sw.status] || anyRunning ? refreshTrials() : Promise.resolve(anyRunning);
      return reads.then(function (running) {
        anyRunning = running;
        setTimeout(refresh, LIVE[sw.status] || running ? POLL_MS : IDLE_POLL_MS);  // a resumed sweep comes alive again
      });
    }).catch(function () { setTimeout(refresh, POLL_MS * 3); });
  }

  var table = window.CarbsTrialsTable.create(document.getElementById("trials-table"), {
    filter: document.getElementById("trials-filter"), status: document.getElementById("trials-status"),
    count: document.getElementById("trials-count") });
  var curves = window.CarbsCurves.create(document.getElementById("curves"), {
    metric: document.getElementById("curve-metric"), topk: document.getElementById("curve-topk"),
    running: document.getElementById("curve-running"), count: document.getElementById("curve-count") });
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
