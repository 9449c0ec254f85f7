// The case page's article picker: search /api/search as the agent types and insert a Markdown
// link into the message. Without this script the picker stays hidden and the agent pastes
// article addresses into the "Article links" field instead.
(function () {
  "use strict";
  var picker = document.getElementById("article-picker");
  var box = document.getElementById("article-search");
  var list = document.getElementById("article-results");
  var body = document.getElementById("message-body");
  if (!picker || !box || !list || !body || !window.fetch) { return; }
  picker.hidden = false;
  var timer = null;
  var sent = 0;

  function insert(text) {
    var start = body.selectionStart || body.value.length;
    var end = body.selectionEnd || start;
    body.value = body.value.slice(0, start) + text + body.value.slice(end);
    body.focus();
    body.selectionStart = body.selectionEnd = start + text.length;
  }

  function show(results) {
    list.textContent = "";
    results.forEach(function (r) {
      var item = document.createElement("li");
      var button = document.createElement("button");
      button.type = "button";
      button.className = "link-button";
      button.textContent = r.title;
      button.addEventListener("click", function () {
        insert("[" + r.title.replace(/[\[\]]/g, "") + "](" + r.url + ")");
      });
      item.appendChild(button);
      list.appendChild(item);
    });
  }

  function search() {
    var q = box.value.trim();
    var ticket = ++sent;
    if (!q) { show([]); return; }
    fetch(picker.getAttribute("data-search-url") + "?limit=5&q=" + encodeURIComponent(q), {credentials: "same-origin"})
      .then(function (response) { return response.ok ? response.json() : {results: []}; })
      .then(function (data) { if (ticket === sent) { show(data.results || []); } })
      .catch(function () { /* the links field still works */ });
  }

  box.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(search, 250);
  });
  box.addEventListener("keydown", function (event) {
    if (event.key === "Enter") { event.preventDefault(); search(); }  // not a submit of the message
  });
}());
