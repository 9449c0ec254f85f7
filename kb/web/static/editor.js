// The agent editor's enhancements; without this script every one of them has a plain-form fallback.
// - Live preview: POST the Markdown to /agent/preview as the agent types and show the server's
//   sanitised HTML (the portal's own rendering). Fallback: the form's "Preview" button.
// - Unsaved changes: warn before leaving the page with edits that were not saved.
// - Images: upload without leaving the page and insert the Markdown at the cursor. Fallback: the
//   upload form opens a new tab that shows the Markdown to copy.
(function () {
  "use strict";
  var PREVIEW_DELAY_MS = 300;
  var form = document.querySelector("form.editor-form");
  var textarea = document.querySelector("textarea[data-preview-url]");
  if (!form || !textarea) { return; }
  var tokenField = form.querySelector("input[name=csrf_token]");

  function setText(id, text) {
    var element = document.getElementById(id);
    if (element) { element.textContent = text; }
  }

  // Why the text would be shown as plain text (or cannot be previewed), from the server.
  function warn(text) {
    var problem = document.getElementById("preview-problem");
    if (!problem) { return; }
    problem.textContent = text || "";
    problem.hidden = !text;
  }

  function livePreview() {
    var pane = document.getElementById(textarea.getAttribute("data-preview-target"));
    if (!pane || !tokenField || !window.fetch) { return; }
    var timer = null;
    var sent = 0;

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
        setText("preview-status", "");
      }).catch(function (error) {
        if (ticket !== sent) { return; }
        if (error && error.notice) { warn(error.notice); }
        setText("preview-status", "(not updated: use the Preview button)");
      });
    }

    textarea.addEventListener("input", function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(refresh, PREVIEW_DELAY_MS);
    });
  }

  // The form's fields as one string, to tell whether anything differs from what was saved.
  function snapshot() {
    var parts = [];
    Array.prototype.forEach.call(form.elements, function (element) {
      if (element.name && element.name !== "csrf_token" && element.type !== "submit") {
        parts.push(element.name + "=" + element.value);
      }
    });
    return parts.join("\u0000");
  }

  function unsavedWarning() {
    // A page the server sent back after a POST (an error, or Preview) holds text that is not saved.
    var saved = form.hasAttribute("data-unsaved") ? null : snapshot();
    var submitting = false;
    form.addEventListener("submit", function () { submitting = true; });
    window.addEventListener("pageshow", function () { submitting = false; });
    window.addEventListener("beforeunload", function (event) {
      if (submitting || snapshot() === saved) { return; }
      event.preventDefault();
      event.returnValue = "";  // older browsers need a value to show their own "Leave site?" question
    });
  }

  // Blank lines that make ``text`` a paragraph of its own between ``before`` and ``after``.
  function asParagraph(before, text, after) {
    var lead = !before || /\n\n$/.test(before) ? "" : (/\n$/.test(before) ? "\n" : "\n\n");
    var tail = !after || /^\n\n/.test(after) ? "" : (/^\n/.test(after) ? "\n" : "\n\n");
    return lead + text + tail;
  }

  function insertAtCursor(text) {
    var start = textarea.selectionStart;
    var end = textarea.selectionEnd;
    var block = asParagraph(textarea.value.slice(0, start), text, textarea.value.slice(end));
    textarea.setRangeText(block, start, end, "end");
    textarea.focus();
    textarea.dispatchEvent(new Event("input", { bubbles: true }));  // refresh the preview, mark unsaved
  }

  function imageUpload() {
    var upload = document.getElementById("image-upload");
    if (!upload || !window.fetch || !window.FormData) { return; }
    setText("image-how", "Its Markdown goes in at the cursor.");
    upload.addEventListener("submit", function (event) {
      event.preventDefault();
      setText("image-status", "Uploading…");
      fetch(upload.action, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Accept": "application/json" },
        body: new FormData(upload)  // includes the inputs tied to it with form="image-upload"
      }).then(function (response) {
        return response.json().catch(function () {
          return { error: "The upload failed (HTTP " + response.status + "). Try again, or use the Images page." };
        }).then(function (data) { return { ok: response.ok, data: data }; });
      }).then(function (result) {
        if (!result.ok) { setText("image-status", result.data.error || "The upload failed."); return; }
        insertAtCursor(result.data.markdown);
        upload.reset();
        setText("image-status", "Inserted " + result.data.filename + " at the cursor.");
      }).catch(function () {
        setText("image-status", "The upload failed: check the connection and try again.");
      });
    });
  }

  livePreview();
  unsavedWarning();
  imageUpload();
}());
