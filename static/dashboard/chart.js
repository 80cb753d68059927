// The account's equity chart: uPlot over the server's downsampled series (min/max per bucket, running peak,
// drawdown warning and critical lines, liquidations as vertical markers).
(function () {
  "use strict";
  var box = document.getElementById("equity-chart");
  if (!box || !window.uPlot) { return; }
  var plot = null;

  function markers(times) {
    return {
      hooks: {
        draw: [function (u) {
          var ctx = u.ctx;
          ctx.save();
          ctx.strokeStyle = "#a4161a"; ctx.lineWidth = 2 * devicePixelRatio; ctx.setLineDash([6, 4]);
          times.forEach(function (t) {
            var x = Math.round(u.valToPos(t, "x", true));
            ctx.beginPath(); ctx.moveTo(x, u.bbox.top); ctx.lineTo(x, u.bbox.top + u.bbox.height); ctx.stroke();
          });
          ctx.restore();
        }]
      }
    };
  }

  function draw(data) {
    var empty = box.parentElement.querySelector(".chart-empty");
    if (plot) { plot.destroy(); plot = null; }
    empty.hidden = data.t.length > 0;
    if (!data.t.length) { return; }
    var num = function (xs) { return xs.map(Number); };
    var opts = {
      width: box.clientWidth || 600, height: 320,
      plugins: [markers(data.liquidations)],
      scales: { x: { time: true, range: function () { return [data.from, data.to]; } } },
      series: [
        {},
        { label: "Equity (low)", stroke: "#1f5fbf", width: 1.5 },
        { label: "Equity (high)", stroke: "#7aa7ff", width: 1 },
        { label: "Peak", stroke: "#1b7f3b", width: 1, dash: [4, 4] },
        { label: "Warning", stroke: "#b57600", width: 1, dash: [2, 4] },
        { label: "Critical", stroke: "#a4161a", width: 1.5, dash: [8, 4] }
      ],
      axes: [{}, { size: 70 }]
    };
    plot = new uPlot(opts, [data.t, num(data.low), num(data.high), num(data.peak), num(data.warning), num(data.critical)], box);
  }

  function load(windowName) {
    fetch(box.getAttribute("data-url") + "?window=" + encodeURIComponent(windowName), { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(draw);
    document.querySelectorAll(".segmented [data-window]").forEach(function (b) {
      b.setAttribute("aria-pressed", b.getAttribute("data-window") === windowName ? "true" : "false");
    });
  }
  document.querySelectorAll(".segmented [data-window]").forEach(function (b) {
    b.addEventListener("click", function () { load(b.getAttribute("data-window")); });
  });
  window.addEventListener("resize", function () { if (plot) { plot.setSize({ width: box.clientWidth, height: 320 }); } });
  load("1d");
})();
