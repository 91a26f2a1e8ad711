/* A tiny SVG plotting helper: scatter + lines on log or linear axes, with hover and click.
 * Why hand-written: the dashboard must run without the internet, and a frontier plot needs
 * only axes, points, a line and tooltips. Exposes window.CarbsPlot. */
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";

  function el(tag, attrs, parent) {
    var e = document.createElementNS(NS, tag);
    for (var k in attrs) if (Object.prototype.hasOwnProperty.call(attrs, k)) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }

  function fmt(v) {
    if (v === null || v === undefined || !isFinite(v)) return "-";
    var a = Math.abs(v);
    if (a !== 0 && (a >= 1e4 || a < 1e-3)) return v.toExponential(2);
    return (Math.round(v * 1e4) / 1e4).toString();
  }

  function extent(vals, log) {
    var xs = vals.filter(function (v) { return v !== null && isFinite(v) && (!log || v > 0); });
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

  function scale(dom, range, log) {
    var d0 = log ? Math.log10(dom[0]) : dom[0], d1 = log ? Math.log10(dom[1]) : dom[1];
    return function (v) {
      var t = ((log ? Math.log10(v) : v) - d0) / (d1 - d0);
      return range[0] + t * (range[1] - range[0]);
    };
  }

  function ticks(dom, log) {
    var out = [];
    if (log) {
      var a = Math.floor(Math.log10(dom[0])), b = Math.ceil(Math.log10(dom[1]));
      var step = Math.max(1, Math.ceil((b - a) / 6));
      for (var e = a; e <= b; e += step) {
        var v = Math.pow(10, e);
        if (v >= dom[0] && v <= dom[1]) out.push(v);
      }
      if (out.length < 2) out = [dom[0], Math.sqrt(dom[0] * dom[1]), dom[1]];
      return out;
    }
    var span = dom[1] - dom[0], raw = span / 5, mag = Math.pow(10, Math.floor(Math.log10(raw)));
    var st = [1, 2, 5, 10].map(function (m) { return m * mag; }).find(function (s) { return span / s <= 6; });
    for (var t = Math.ceil(dom[0] / st) * st; t <= dom[1] + 1e-12; t += st) out.push(t);
    return out;
  }

  var tip = null;
  function tooltip() {
    if (!tip) { tip = document.createElement("div"); tip.className = "tooltip"; tip.style.display = "none"; document.body.appendChild(tip); }
    return tip;
  }

  /* opts: {width, height, xlog, ylog, xlabel, ylabel, title,
   *        series: [{name, color, r, line, dash, marker: "circle"|"cross", cls, points: [{x, y, data}]}],
   *        onHover(point, series), onClick(point, series), tip(point, series) -> html} */
  function draw(container, opts) {
    var W = opts.width || 640, H = opts.height || 380;
    var m = { l: 62, r: 14, t: opts.title ? 24 : 10, b: 42 };
    container.innerHTML = "";
    var svg = el("svg", { width: W, height: H, viewBox: "0 0 " + W + " " + H, role: "img" }, container);
    if (opts.id) svg.setAttribute("id", opts.id);
    var xs = [], ys = [];
    opts.series.forEach(function (s) { s.points.forEach(function (p) { xs.push(p.x); ys.push(p.y); }); });
    var xd = opts.xdomain || extent(xs, opts.xlog), yd = opts.ydomain || extent(ys, opts.ylog);
    var X = scale(xd, [m.l, W - m.r], opts.xlog), Y = scale(yd, [H - m.b, m.t], opts.ylog);
    var ax = el("g", { class: "axis" }, svg);
    ticks(xd, opts.xlog).forEach(function (t) {
      var x = X(t);
      el("line", { x1: x, x2: x, y1: m.t, y2: H - m.b, class: "gridline" }, ax);
      el("text", { x: x, y: H - m.b + 14, "text-anchor": "middle" }, ax).textContent = fmt(t);
    });
    ticks(yd, opts.ylog).forEach(function (t) {
      var y = Y(t);
      el("line", { x1: m.l, x2: W - m.r, y1: y, y2: y, class: "gridline" }, ax);
      el("text", { x: m.l - 5, y: y + 3, "text-anchor": "end" }, ax).textContent = fmt(t);
    });
    el("path", { d: "M" + m.l + "," + m.t + "V" + (H - m.b) + "H" + (W - m.r), fill: "none" }, ax);
    el("text", { x: (m.l + W - m.r) / 2, y: H - 6, "text-anchor": "middle" }, ax).textContent = opts.xlabel || "";
    var yl = el("text", { x: 12, y: (m.t + H - m.b) / 2, "text-anchor": "middle",
      transform: "rotate(-90 12 " + (m.t + H - m.b) / 2 + ")" }, ax);
    yl.textContent = opts.ylabel || "";
    if (opts.title) el("text", { x: m.l, y: 15, "font-size": 12, "font-weight": 600 }, svg).textContent = opts.title;

    var ok = function (p) {
      return p.x !== null && p.y !== null && isFinite(p.x) && isFinite(p.y) &&
        (!opts.xlog || p.x > 0) && (!opts.ylog || p.y > 0);
    };
    opts.series.forEach(function (s) {
      var pts = s.points.filter(ok);
      var g = el("g", { class: "series " + (s.cls || "") }, svg);
      if (s.line && pts.length > 1) {
        var d = pts.map(function (p, i) { return (i ? "L" : "M") + X(p.x).toFixed(1) + "," + Y(p.y).toFixed(1); }).join("");
        el("path", { d: d, fill: "none", stroke: s.color, "stroke-width": s.width || 1.8,
          "stroke-dasharray": s.dash || "", class: (s.cls || "") + "-line", opacity: s.opacity || 1 }, g);
      }
      if (s.marker === "none") return;
      pts.forEach(function (p) {
        var x = X(p.x), y = Y(p.y), node;
        if (s.marker === "cross") {
          node = el("path", { d: "M" + (x - 4) + "," + (y - 4) + "L" + (x + 4) + "," + (y + 4) +
            "M" + (x - 4) + "," + (y + 4) + "L" + (x + 4) + "," + (y - 4), stroke: s.color, "stroke-width": 2,
            class: "point " + (s.cls || "") }, g);
          el("rect", { x: x - 5, y: y - 5, width: 10, height: 10, fill: "transparent", class: "point-hit" }, g);
        } else {
          node = el("circle", { cx: x, cy: y, r: s.r || 4, fill: s.color, class: "point " + (s.cls || ""),
            opacity: s.opacity || 0.95 }, g);
        }
        if (p.data && p.data.number !== undefined) node.setAttribute("data-trial", p.data.number);
        node.addEventListener("mouseenter", function (ev) {
          if (opts.tip) { var t = tooltip(); t.innerHTML = opts.tip(p, s); t.style.display = "block";
            t.style.left = ev.clientX + 12 + "px"; t.style.top = ev.clientY + 12 + "px"; }
          if (opts.onHover) opts.onHover(p, s);
        });
        node.addEventListener("mouseleave", function () { if (tip) tip.style.display = "none"; });
        node.addEventListener("click", function () { if (opts.onClick) opts.onClick(p, s); });
      });
    });
    if (opts.legend !== false) {
      // bottom-left: on a cost-loss plot the frontier falls from top-left to bottom-right,
      // and failed trials are drawn along the top, so this corner is the emptiest
      var named = opts.series.filter(function (s) { return s.name; });
      var lx = m.l + 8, ly = H - m.b - 6 - 15 * named.length;
      named.forEach(function (s, i) {
        el("rect", { x: lx, y: ly + i * 15, width: 10, height: 10, fill: s.color }, svg);
        el("text", { x: lx + 14, y: ly + i * 15 + 9, "font-size": 10 }, svg).textContent = s.name;
      });
    }
    return { svg: svg, x: X, y: Y, xdomain: xd, ydomain: yd };
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

  window.CarbsPlot = { draw: draw, fmt: fmt, esc: esc, paramsTable: paramsTable };
})();
