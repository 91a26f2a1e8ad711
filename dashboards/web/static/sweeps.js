// The sweeps list: "compare selected" sends the ticked sweeps' names (a file, not inline, so the
// page's Content-Security-Policy can forbid inline scripts).
(function () {
  var form = document.getElementById("compare-form");
  if (!form) return;
  form.addEventListener("submit", function () {
    var picked = Array.prototype.map.call(
      document.querySelectorAll(".compare-pick:checked"), function (c) { return c.value; });
    document.getElementById("compare-names").value = picked.join(",");
  });
})();
