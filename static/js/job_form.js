// Job form: show the chosen kind's fields only, and offer the chosen data set's columns only.
(function () {
  "use strict";
  var form = document.getElementById("job-form");
  if (!form) return;
  var kind = document.getElementById("id_kind");
  var dataset = document.getElementById("id_dataset_version");
  var columns = JSON.parse(document.getElementById("dataset-columns").textContent);

  function showKind() {
    var chosen = kind.value || "evaluate";
    form.querySelectorAll("[data-kinds]").forEach(function (input) {
      var on = input.dataset.kinds.split(" ").indexOf(chosen) >= 0;
      var box = input.closest(".field");
      if (box) box.hidden = !on;
      input.disabled = !on;  // a hidden field is not sent: the kind's default applies
    });
  }

  function showColumns() {
    var own = columns[dataset.value];
    form.querySelectorAll("select[data-columns]").forEach(function (select) {
      Array.prototype.forEach.call(select.options, function (option) {
        if (option.value === "") return;  // "(default)"
        var on = !own || own.indexOf(option.value) >= 0;
        option.hidden = !on;
        option.disabled = !on;
        if (!on) option.selected = false;
      });
    });
  }

  kind.addEventListener("change", showKind);
  dataset.addEventListener("change", showColumns);
  showKind();
  showColumns();
})();
