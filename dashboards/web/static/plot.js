/* Shared plotting helpers over the vendored Plotly.js: axes with readable ticks, one config.
 * Why explicit tick values on log axes: Plotly's automatic ticks on a log axis that spans less
 * than a decade are the data's own odd values (62.7156, 97.9661); here a log axis is ticked at
 * decades, or at 1-2-5 (then 1-2-3-5-7) steps where the data span too few decades for that, and
 * every axis gets `automargin` so no label is cut off. Exposes window.CarbsPlot. */
(function () {
  "use strict";

  var MANTISSAS = [[1], [1, 2, 5], [1, 2, 3, 5, 7], [1, 2, 3, 4, 5, 6, 7, 8, 9]];
  var MAX_TICKS = 8;
  var CONFIG = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d"] };

  function fmt(v) {
    if (v === null || v === undefined || !isFinite(v)) return "-";
    var a = Math.abs(v);
    if (a !== 0 && (a >= 1e4 || a < 1e-3)) return v.toExponential(2);
    return (Math.round(v * 1e4) / 1e4).toString();
  }

  /* A tick label as short as it can be: 1e11, 2e-3, 200, 0.5. */
  function tickLabel(v) {
    var a = Math.abs(v);
    if (a !== 0 && (a >= 1e4 || a < 1e-2)) {
      var e = Math.floor(Math.log10(a) + 1e-9), m = Math.round(v / Math.pow(10, e) * 100) / 100;
      return (m === 1 ? "1" : String(m)) + "e" + e;
    }
    return String(Math.round(v * 1e6) / 1e6);
  }

  function finite(vals, log) {
    return vals.filter(function (v) { return v !== null && v !== undefined && isFinite(v) && (!log || v > 0); });
  }

  /* [lo, hi] of the values, padded by 5 % of the span (in log space on a log axis). */
  function extent(vals, log) {
    var xs = finite(vals, log);
    if (!xs.length) return log ? [1, 10] : [0, 1];
    var lo = Math.min.apply(null, xs), hi = Math.max.apply(null, xs);
    if (log) {
      if (lo === hi) { lo /= 2; hi *= 2; }
      var pad = Math.pow(hi / lo, 0.05);
      return [lo / pad, hi * pad];
    }
    if (lo === hi) { lo -= 0.5 * (Math.abs(lo) || 1); hi += 0.5 * (Math.abs(hi) || 1); }
    var p = (hi - lo) * 0.06;
    return [lo - p, hi + p];
  }

  /* Tick values of a log axis over [lo, hi]: decades (every k-th where there are many), else
   * the first mantissa set that puts at least three ticks inside. */
  function logTicks(lo, hi) {
    var a = Math.floor(Math.log10(lo)), b = Math.ceil(Math.log10(hi)), out = [];
    for (var s = 0; s < MANTISSAS.length; s++) {
      out = [];
      for (var e = a; e <= b; e++) {
        MANTISSAS[s].forEach(function (m) {
          var v = m * Math.pow(10, e);
          if (v >= lo && v <= hi) out.push(v);
        });
      }
      if (out.length >= 3 || (s === 0 && out.length >= 2)) break;
    }
    if (s === 0 && out.length > MAX_TICKS) {
      var step = Math.ceil(out.length / MAX_TICKS);
      out = out.filter(function (v) { return Math.round(Math.log10(v)) % step === 0; });
    }
    return out;
  }

  /* A Plotly axis over `values`: log with logTicks, or linear (whole numbers for integers). */
  function axis(title, values, opts) {
    opts = opts || {};
    var log = !!opts.log, dom = extent(values, log);
    var ax = { title: { text: title || "", standoff: 6 }, automargin: true, showline: true, linecolor: "#9aa5b1",
      gridcolor: "#eef2f6", zeroline: false, ticks: "outside", tickfont: { size: 10 } };
    if (log) {
      var tv = logTicks(dom[0], dom[1]);
      ax.type = "log";
      ax.range = [Math.log10(dom[0]), Math.log10(dom[1])];
      ax.tickvals = tv;
      ax.ticktext = tv.map(tickLabel);
    } else {
      ax.type = "linear";
      ax.range = dom;
      if (opts.integer && dom[1] - dom[0] <= 12) { ax.dtick = 1; ax.tick0 = 0; }
      ax.nticks = 7;
    }
    return ax;
  }

  function layout(extra) {
    var base = { margin: { l: 10, r: 10, t: 30, b: 10 }, font: { family: "system-ui, sans-serif", size: 11, color: "#1f2933" },
      paper_bgcolor: "#ffffff", plot_bgcolor: "#ffffff", hovermode: "closest",
      legend: { font: { size: 10 } } };
    for (var k in extra) if (Object.prototype.hasOwnProperty.call(extra, k)) base[k] = extra[k];
    return base;
  }

  /* Draw (or redraw in place) traces into a container; returns Plotly's promise. */
  function plot(container, traces, lay) {
    return window.Plotly.react(container, traces, layout(lay), CONFIG);
  }

  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  function paramsTable(params) {
    var rows = Object.keys(params || {}).sort().map(function (k) {
      var v = params[k];
      return "<tr><td>" + esc(k) + "</td><td><b>" + esc(typeof v === "number" ? fmt(v) : JSON.stringify(v)) + "</b></td></tr>";
    });
    return "<table>" + rows.join("") + "</table>";
  }

  window.CarbsPlot = { plot: plot, axis: axis, extent: extent, logTicks: logTicks, tickLabel: tickLabel,
    fmt: fmt, esc: esc, paramsTable: paramsTable };
})();
