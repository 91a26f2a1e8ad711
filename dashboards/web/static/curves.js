/* The learning-curves panel: one coloured line per trial, validation and training loss never
 * on the same plot, the best K finished trials (by their final loss) and the running ones.
 * Why the running trials too: a curve that lags the others is the reason to stop a trial, and
 * the store's curve table holds whatever points a trial has reported so far; the page polls. */
(function () {
  "use strict";
  var P = window.CarbsPlot, esc = P.esc, fmt = P.fmt;
  var PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
    "#7f7f7f", "#bcbd22", "#393b79", "#ad494a", "#637939", "#7b4173", "#e7969c", "#3182bd", "#31a354",
    "#756bb1", "#fd8d3c", "#843c39"];
  var METRIC = { val_loss: "validation loss", train_loss: "training loss" };

  /* Which curves to draw: running ones (if asked), then the best `k` finished by final loss. */
  function choose(curves, k, running) {
    var live = curves.filter(function (c) { return c.status === "running"; });
    var done = curves.filter(function (c) { return c.status !== "running"; }).slice().sort(function (a, b) {
      var la = a.loss === null ? Infinity : a.loss, lb = b.loss === null ? Infinity : b.loss;
      return la - lb || a.number - b.number;
    });
    return { shown: (running ? live : []).concat(done.slice(0, k)), finished: done.length, running: live.length };
  }

  function has(curves, metric) {
    return curves.some(function (c) { return c.points.some(function (q) { return q[metric] !== null && q[metric] !== undefined; }); });
  }

  function create(box, controls) {
    var last = [];

    function trace(c, metric, useTokens) {
      var pts = c.points.filter(function (q) { return q[metric] !== null && q[metric] !== undefined; });
      var color = PALETTE[c.number % PALETTE.length], live = c.status === "running";
      return {
        type: "scatter", mode: pts.length > 1 ? "lines" : "markers", name: "#" + c.number + (live ? " running" : " · " + fmt(c.loss)),
        x: pts.map(function (q) { return useTokens ? q.tokens : Math.max(q.step, 1); }),
        y: pts.map(function (q) { return q[metric]; }),
        line: { color: color, width: live ? 2.2 : 1.5, dash: live ? "dot" : "solid" }, marker: { color: color, size: 5 },
        meta: c.number,
        hovertemplate: "trial " + c.number + " (" + esc(c.status) + ")<br>" + (useTokens ? "tokens" : "step") +
          " %{x:.3s}<br>" + METRIC[metric] + " %{y:.4f}<extra></extra>"
      };
    }

    function draw() {
      var metric = controls.metric.value, k = Math.max(1, parseInt(controls.topk.value, 10) || 1);
      var having = last.filter(function (c) { return has([c], metric); });
      if (!having.length) {
        window.Plotly.purge(box);
        box.innerHTML = "<p class='muted' id='no-curves'>No " + METRIC[metric] + " curves reported (yet).</p>";
        controls.count.textContent = "";
        return;
      }
      var pick = choose(having, k, controls.running.checked);
      var useTokens = pick.shown.every(function (c) { return c.points.every(function (q) { return q.tokens; }); });
      var traces = pick.shown.map(function (c) { return trace(c, metric, useTokens); });
      var xs = [], ys = [];
      traces.forEach(function (t) { xs = xs.concat(t.x); ys = ys.concat(t.y); });
      if (box.querySelector("#no-curves")) box.innerHTML = "";
      P.plot(box, traces, {
        height: 380, xaxis: P.axis(useTokens ? "tokens seen" : "training step", xs, { log: true }),
        yaxis: P.axis(METRIC[metric] + " (nats per token)", ys),
        legend: { title: { text: "trial · final loss" }, font: { size: 10 } }
      });
      controls.count.textContent = "showing " + traces.length + " curves: the best " + Math.min(k, pick.finished) + " of " +
        pick.finished + " finished" + (controls.running.checked ? " and " + pick.running + " running" : "") + " trials";
    }

    var touched = false;  // the reader picked a metric: polling no longer picks one
    controls.metric.addEventListener("change", function () { touched = true; });
    ["change", "input"].forEach(function (ev) {
      controls.metric.addEventListener(ev, draw);
      controls.topk.addEventListener(ev, draw);
      controls.running.addEventListener(ev, draw);
    });
    var stamp = null;
    // a poll that brings nothing new leaves the plot alone (a redraw would drop the hover label)
    return { update: function (curves) {
      var now = JSON.stringify(curves);
      if (now === stamp) return;
      stamp = now; last = curves;
      if (!touched && !has(curves, "val_loss") && has(curves, "train_loss")) controls.metric.value = "train_loss";
      draw();
    } };
  }

  window.CarbsCurves = { create: create, choose: choose };
})();
