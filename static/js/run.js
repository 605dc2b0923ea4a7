// Run page: draw the stored figures, and follow a queued or running run until it ends.
(function () {
  "use strict";
  document.querySelectorAll("[data-figure]").forEach(function (el) {
    var spec = JSON.parse(document.getElementById(el.dataset.figure).textContent);
    window.Plotly.newPlot(el, spec.data, spec.layout, {responsive: true, displaylogo: false});
  });

  var box = document.getElementById("run-status");
  if (!box) return;
  var finished = ["succeeded", "failed", "cancelled"];
  if (finished.indexOf(box.dataset.status) >= 0) return;

  var bar = document.getElementById("progress");
  var text = document.getElementById("status-text");
  var message = document.getElementById("progress-message");
  function poll() {
    fetch(box.dataset.api, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (run) {
        if (bar) bar.value = run.progress;
        text.textContent = run.status;
        text.className = "status status-" + run.status;
        message.textContent = run.progress_message;
        if (finished.indexOf(run.status) >= 0) { window.location.reload(); return; }
        window.setTimeout(poll, 1000);
      })
      .catch(function () { window.setTimeout(poll, 3000); });
  }
  window.setTimeout(poll, 1000);
})();
