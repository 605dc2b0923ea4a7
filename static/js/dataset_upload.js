// Data set upload: once a CSV is chosen, offer its header's column names for the label column.
(function () {
  "use strict";
  var file = document.getElementById("id_file");
  var list = document.getElementById("label-columns");
  if (!file || !list) return;

  // One CSV line into fields: commas outside double quotes, "" inside quotes is a quote.
  function fields(line) {
    var out = [], cell = "", quoted = false;
    for (var i = 0; i < line.length; i++) {
      var c = line[i];
      if (quoted) {
        if (c === '"' && line[i + 1] === '"') { cell += '"'; i++; }
        else if (c === '"') quoted = false;
        else cell += c;
      } else if (c === '"') quoted = true;
      else if (c === ",") { out.push(cell); cell = ""; }
      else cell += c;
    }
    out.push(cell);
    return out;
  }

  file.addEventListener("change", function () {
    list.replaceChildren();
    var chosen = file.files && file.files[0];
    if (!chosen || !/\.csv$/i.test(chosen.name)) return;
    chosen.slice(0, 65536).text().then(function (head) {
      var line = head.replace(/^\uFEFF/, "").split(/\r?\n/)[0];
      fields(line).forEach(function (name) {
        if (!name) return;
        var option = document.createElement("option");
        option.value = name;
        list.appendChild(option);
      });
      list.dataset.ready = "1";
    });
  });
})();
