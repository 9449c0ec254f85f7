// Live preview for the agent editor: POST the Markdown to /agent/preview as the agent types
// and show the server's sanitised HTML (the portal's own rendering). Without this script the
// form's "Preview" button does the same with a full page load.
(function () {
  "use strict";
  var DELAY_MS = 300;
  var textarea = document.querySelector("textarea[data-preview-url]");
  if (!textarea || !window.fetch) { return; }
  var pane = document.getElementById(textarea.getAttribute("data-preview-target"));
  var status = document.getElementById("preview-status");
  var problem = document.getElementById("preview-problem");
  var tokenField = textarea.form && textarea.form.querySelector("input[name=csrf_token]");
  if (!pane || !tokenField) { return; }
  var timer = null;
  var sent = 0;

  function say(text) {
    if (status) { status.textContent = text; }
  }

  // Why the text would be shown as plain text (or cannot be previewed), from the server.
  function warn(text) {
    if (!problem) { return; }
    problem.textContent = text || "";
    problem.hidden = !text;
  }

  function refresh() {
    var ticket = ++sent;
    fetch(textarea.getAttribute("data-preview-url"), {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "X-CSRFToken": tokenField.value
      },
      body: JSON.stringify({ body_markdown: textarea.value })
    }).then(function (response) {
      if (response.status === 413) {  // too long to preview: the server says what to do
        return response.json().then(function (data) {
          var tooLong = new Error("HTTP 413");
          tooLong.notice = data.error;
          throw tooLong;
        });
      }
      if (!response.ok) { throw new Error("HTTP " + response.status); }
      return response.json();
    }).then(function (data) {
      if (ticket !== sent) { return; }  // a newer request is on its way: keep the order
      pane.innerHTML = data.html;       // sanitised by the server with nh3
      warn(data.problem);
      say("");
    }).catch(function (error) {
      if (ticket !== sent) { return; }
      if (error && error.notice) { warn(error.notice); }
      say("(not updated: use the Preview button)");
    });
  }

  textarea.addEventListener("input", function () {
    window.clearTimeout(timer);
    timer = window.setTimeout(refresh, DELAY_MS);
  });
}());
