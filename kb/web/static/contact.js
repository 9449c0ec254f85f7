/* The contact form's suggestions while the customer types (kb/web/portal/contact.py).
 *
 * Progressive enhancement only: without this script the "Show suggested articles" button posts
 * the form and the page comes back with the same list. Here, typing in the question (or subject)
 * asks the JSON endpoint, debounced and one request at a time, and puts the list it renders (each
 * article a <details> that opens in place) under the question. The list's HTML is the portal's
 * own template, escaped there; the customer's text is only ever sent, never inserted.
 */
(function () {
  "use strict";

  var DELAY_MS = 600;
  var MIN_CHARS = 3;

  function setup(form) {
    var url = form.getAttribute("data-suggest-url");
    var question = form.querySelector("#contact-question");
    var subject = form.querySelector("#contact-subject");
    var box = form.querySelector("#contact-suggestions");
    var token = form.querySelector("input[name=csrf_token]");
    var max = parseInt(question.getAttribute("maxlength"), 10) || 10000;
    var timer = null;
    var controller = null;
    var lastSent = null;

    function ask() {
      var text = question.value.trim();
      var key = (subject ? subject.value.trim() : "") + "\u0000" + text;
      if (key === lastSent) { return; }
      if (text.length < MIN_CHARS && !/[^\u0000-\u007f]/.test(text)) { return; }
      lastSent = key;
      if (controller) { controller.abort(); }
      controller = new AbortController();
      fetch(url, {
        method: "POST",
        signal: controller.signal,
        credentials: "same-origin",
        headers: {"Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": token.value},
        body: JSON.stringify({subject: subject ? subject.value.slice(0, 400) : "", question: text.slice(0, max)})
      })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (data) {
          if (data && typeof data.html === "string") { box.innerHTML = data.html; }
        })
        .catch(function () { lastSent = null; /* aborted or offline: the button still works */ });
    }

    function later() {
      window.clearTimeout(timer);
      timer = window.setTimeout(ask, DELAY_MS);
    }

    question.addEventListener("input", later);
    if (subject) { subject.addEventListener("input", later); }
    if (question.value.trim()) { later(); }
  }

  function init() {
    var form = document.getElementById("contact-form");
    if (form && window.fetch && window.AbortController) { setup(form); }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
}());
