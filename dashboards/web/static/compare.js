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
    var series = [], rows = [];
    frs.forEach(function (fr, i) {
      var c = colors[i % colors.length];
      var front = fr.points.filter(function (p) { return p.frontier; }).sort(function (a, b) { return a.cost - b.cost; });
      series.push({ name: fr.sweep, color: c, line: true, r: 4, cls: "frontier",
        points: front.map(function (p) { return { x: p.cost, y: p.loss, data: Object.assign({ sweep: fr.sweep }, p) }; }) });
      series.push({ color: c, r: 2.5, opacity: 0.35, cls: "trial",
        points: fr.points.filter(function (p) { return !p.frontier; }).map(function (p) { return { x: p.cost, y: p.loss, data: Object.assign({ sweep: fr.sweep }, p) }; }) });
      var best = fr.points.length ? Math.min.apply(null, fr.points.map(function (p) { return p.loss; })) : null;
      var cheapest = fr.points.length ? Math.min.apply(null, fr.points.map(function (p) { return p.cost; })) : null;
      rows.push("<tr><td><a href='/sweeps/" + encodeURIComponent(fr.sweep) + "'>" + esc(fr.sweep) + "</a></td><td>" + fr.points.length +
        "</td><td>" + front.length + "</td><td>" + fmt(best) + "</td><td>" + fmt(cheapest) + "</td></tr>");
    });
    P.draw(document.getElementById("compare-plot"), {
      width: 760, height: 440, xlog: true, xlabel: "training cost (FLOPs)", ylabel: "loss", series: series,
      tip: function (p) { return esc(p.data.sweep) + " trial " + p.data.number + "<br>cost " + fmt(p.x) + "<br>loss " + fmt(p.y); },
      onClick: function (p) {
        document.getElementById("point-details").innerHTML = "<h3>" + esc(p.data.sweep) + " trial " + p.data.number + "</h3>" +
          P.paramsTable(p.data.params);
      }
    });
    document.querySelector("#compare-table tbody").innerHTML = rows.join("");
  });
})();
