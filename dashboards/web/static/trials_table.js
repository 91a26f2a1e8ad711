/* The trials table: click a column header to sort by it (again to reverse), type to keep only
 * the rows that contain the text, pick a status to keep only those. Sort and filter survive
 * the redraws that polling brings. */
(function () {
  "use strict";
  var P = window.CarbsPlot, esc = P.esc, fmt = P.fmt;

  function columns(trials) {
    var names = {};
    trials.forEach(function (t) { Object.keys(t.params).forEach(function (k) { names[k] = 1; }); });
    var fixed = [
      { key: "number", label: "#", get: function (t) { return t.number; } },
      { key: "status", label: "status", get: function (t) { return t.status; } },
      { key: "loss", label: "loss", get: function (t) { return t.loss; } },
      { key: "cost_flops", label: "cost (FLOPs)", get: function (t) { return t.cost_flops; } },
      { key: "cost_seconds", label: "seconds", get: function (t) { return t.cost_seconds; } }
    ];
    var params = Object.keys(names).sort().map(function (k) {
      return { key: "param:" + k, label: k, get: function (t) { return t.params[k]; } };
    });
    var error = { key: "error", label: "error", get: function (t) {
      return t.error ? (t.failure_reason ? "[" + t.failure_reason + "] " : "") + t.error.split("\n")[0] : null; } };
    return fixed.concat(params, [error]);
  }

  /* Missing values sort last in either direction; numbers as numbers, the rest as text. */
  function compare(a, b) {
    var na = a === null || a === undefined || a === "", nb = b === null || b === undefined || b === "";
    if (na || nb) return na && nb ? 0 : (na ? 1 : -1);
    if (typeof a === "number" && typeof b === "number") return a - b;
    return String(a).localeCompare(String(b));
  }

  function cell(v) {
    if (v === null || v === undefined) return "";
    return typeof v === "number" ? fmt(v) : String(v);
  }

  function create(table, controls) {
    var state = { key: "number", dir: -1 }, trials = [];

    function draw() {
      var cols = columns(trials), col = cols.filter(function (c) { return c.key === state.key; })[0] || cols[0];
      var text = controls.filter.value.trim().toLowerCase(), status = controls.status.value;
      var rows = trials.filter(function (t) {
        if (status && t.status !== status) return false;
        if (!text) return true;
        return cols.some(function (c) { return cell(c.get(t)).toLowerCase().indexOf(text) >= 0; });
      });
      rows.sort(function (a, b) {
        var va = col.get(a), vb = col.get(b), missing = va === null || va === undefined || vb === null || vb === undefined;
        return (missing ? compare(va, vb) : state.dir * compare(va, vb)) || b.number - a.number;
      });
      table.tHead.innerHTML = "<tr>" + cols.map(function (c) {
        var sorted = c.key === col.key, aria = sorted ? (state.dir > 0 ? "ascending" : "descending") : "none";
        return "<th data-key='" + esc(c.key) + "' aria-sort='" + aria + "' class='sortable'>" +
          "<button type='button' class='th-sort'>" + esc(c.label) + (sorted ? (state.dir > 0 ? " ▲" : " ▼") : "") + "</button></th>";
      }).join("") + "</tr>";
      table.tBodies[0].innerHTML = rows.map(function (t) {
        return "<tr data-trial='" + t.number + "'>" + cols.map(function (c) {
          var v = c.get(t);
          if (c.key === "status") return "<td><span class='status status-" + esc(v) + "'>" + esc(v) + "</span></td>";
          return "<td" + (c.key === "error" ? " class='err'" : "") + ">" + esc(cell(v)) + "</td>";
        }).join("") + "</tr>";
      }).join("");
      controls.count.textContent = rows.length === trials.length ? trials.length + " trials" :
        rows.length + " of " + trials.length + " trials";
      var seen = {};
      trials.forEach(function (t) { seen[t.status] = 1; });
      var have = Array.prototype.map.call(controls.status.options, function (o) { return o.value; });
      Object.keys(seen).sort().forEach(function (s) {
        if (have.indexOf(s) < 0) { var o = document.createElement("option"); o.value = s; o.textContent = s; controls.status.appendChild(o); }
      });
    }

    table.tHead.addEventListener("click", function (e) {
      var th = e.target.closest("th");
      if (!th) return;
      var key = th.getAttribute("data-key");
      state = { key: key, dir: key === state.key ? -state.dir : 1 };
      draw();
    });
    controls.filter.addEventListener("input", draw);
    controls.status.addEventListener("change", draw);
    var stamp = null;
    return { update: function (ts) {
      var now = JSON.stringify(ts);
      if (now === stamp) return;  // nothing new: keep the rows (and a reader's selection)
      stamp = now; trials = ts; draw();
    } };
  }

  window.CarbsTrialsTable = { create: create, compare: compare };
})();
