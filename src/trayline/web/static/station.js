// The station page: keep the scan field focused, post scans without reloading, follow the
// station live with server-sent events. No framework; the page also works without this file.
(function () {
  "use strict";
  var root = document.querySelector(".station");
  if (!root) { return; }
  var station = root.dataset.station;
  var csrf = root.dataset.csrf;
  var field = document.getElementById("scan");
  var last = document.getElementById("last");

  function focusScan() {
    if (document.activeElement !== field) { field.focus({ preventScroll: true }); }
  }
  // A keyboard-wedge scanner types into whatever has focus: give it back to the field,
  // except while a button is being pressed.
  document.addEventListener("click", function (e) {
    if (!e.target.closest("button, a, select, input")) { focusScan(); }
  });
  field.addEventListener("blur", function () { setTimeout(focusScan, 300); });
  window.addEventListener("focus", focusScan);

  function show(notice) {
    last.textContent = notice.text || "";
    last.className = "last " + (notice.level || "");
  }

  function post(path, data) {
    var body = new URLSearchParams(data);
    return fetch(path, {
      method: "POST",
      headers: { "X-CSRF-Token": csrf, "Accept": "application/json" },
      body: body,
      credentials: "same-origin"
    }).then(function (r) {
      if (r.status === 401 || r.redirected) { window.location.reload(); return null; }
      return r.json();
    }).then(function (n) { if (n) { show(n); } })
      .catch(function () { show({ level: "error", text: "the server did not answer: scan again" }); });
  }

  root.querySelector("form.scan").addEventListener("submit", function (e) {
    e.preventDefault();
    var text = field.value;
    field.value = "";
    if (text.trim()) { post("/station/" + station + "/scan", { scan: text }); }
    focusScan();
  });

  // YES / NO buttons (re-rendered by live updates, so listen on the container).
  document.getElementById("prompts").addEventListener("click", function (e) {
    var button = e.target.closest("button[name=answer]");
    if (!button) { return; }
    e.preventDefault();
    post("/station/" + station + "/answer", { answer: button.value }).then(focusScan);
  });

  var source = new EventSource("/station/" + station + "/events");
  source.addEventListener("state", function (e) {
    var parts = JSON.parse(e.data);
    ["slots", "prompts", "notices"].forEach(function (name) {
      var el = document.getElementById(name);
      if (el && el.innerHTML !== parts[name]) { el.innerHTML = parts[name]; }
    });
  });
  focusScan();
}());
