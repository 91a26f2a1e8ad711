/* The compare page: several sweeps' Pareto frontiers on one cost-loss plot. */
(function () {
  "use strict";
  var P = window.CarbsPlot, fmt = P.fmt, esc = P.esc;
  var names = (document.body.getAttribute("data-compare") || "").split(",").filter(Boolean);
  var colors = ["#d1495b", "#1f77b4", "#2f855a", "#9467bd", "#ff7f0e", "#8c564b", "#17becf"];
  if (!names.length) return;
  Promise.all(names.map(function (n) {
    return fetch("/api/sweeps/" + encodeURIComponent(n) + "/frontier").then(function (r) { return r.json(); });
  })).then(function (frs) {
    var traces = [], rows = [], xs = [], ys = [];
    var hover = "%{customdata.sweep} trial %{customdata.number}<br>cost %{x:.3s} FLOPs<br>loss %{y:.4f}<extra></extra>";
    frs.forEach(function (fr, i) {
      var c = colors[i % colors.length];
      var front = fr.points.filter(function (p) { return p.frontier; }).sort(function (a, b) { return a.cost - b.cost; });
      var rest = fr.points.filter(function (p) { return !p.frontier; });
      var data = function (p) { return Object.assign({ sweep: fr.sweep }, p); };
      traces.push({ type: "scatter", mode: "lines+markers", name: fr.sweep + " frontier", legendgroup: fr.sweep,
        x: front.map(function (p) { return p.cost; }), y: front.map(function (p) { return p.loss; }),
        customdata: front.map(data), marker: { color: c, size: 8 }, line: { color: c, width: 2 }, hovertemplate: hover });
      traces.push({ type: "scatter", mode: "markers", name: fr.sweep + " trials", legendgroup: fr.sweep,
        x: rest.map(function (p) { return p.cost; }), y: rest.map(function (p) { return p.loss; }),
        customdata: rest.map(data), marker: { color: c, size: 5, opacity: 0.4 }, hovertemplate: hover });
      fr.points.forEach(function (p) { xs.push(p.cost); ys.push(p.loss); });
      var best = fr.points.length ? Math.min.apply(null, fr.points.map(function (p) { return p.loss; })) : null;
      var cheapest = fr.points.length ? Math.min.apply(null, fr.points.map(function (p) { return p.cost; })) : null;
      rows.push("<tr><td><a href='/sweeps/" + encodeURIComponent(fr.sweep) + "'>" + esc(fr.sweep) + "</a></td><td>" + fr.points.length +
        "</td><td>" + front.length + "</td><td>" + fmt(best) + "</td><td>" + fmt(cheapest) + "</td></tr>");
    });
    var box = document.getElementById("compare-plot");
    P.plot(box, traces, { width: 780, height: 460, xaxis: P.axis("training cost (FLOPs)", xs, { log: true }),
      yaxis: P.axis("held-out loss (nats per token)", ys) }).then(function () {
      box.on("plotly_click", function (ev) {
        var d = ev.points[0].customdata;
        document.getElementById("point-details").innerHTML = "<h3>" + esc(d.sweep) + " trial " + d.number + "</h3>" + P.paramsTable(d.params);
      });
    });
    document.querySelector("#compare-table tbody").innerHTML = rows.join("");
  });
})();
