// Live Markdown preview on the compose page. An enhancement only: the form's Preview button does
// the same without JavaScript. The HTML comes from the server's sanitiser, exactly as on save.
(function () {
  "use strict";
  var body = document.querySelector("textarea[data-preview-url]");
  if (!body || !window.fetch) { return; }
  var live = document.createElement("section");
  live.className = "preview live-preview";
  live.setAttribute("aria-live", "polite");
  live.setAttribute("aria-label", body.getAttribute("data-preview-label"));
  body.insertAdjacentElement("afterend", live);
  var timer = null, latest = 0;

  function refresh() {
    var mine = ++latest;
    var data = new FormData();
    data.append("csrf_token", body.form.elements.csrf_token.value);
    data.append("body", body.value);
    fetch(body.getAttribute("data-preview-url"), {method: "POST", body: data, credentials: "same-origin"})
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (answer) {
        // Answers can arrive out of order: only the newest request may fill the preview.
        if (answer && mine === latest) { live.innerHTML = answer.html; }
      })
      .catch(function () { /* offline or signed out: the Preview button still works */ });
  }

  body.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(refresh, 400);
  });
  if (body.value) { refresh(); }
}());
