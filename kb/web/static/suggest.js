/* Instant suggestions for the help-centre search boxes.
 *
 * Progressive enhancement only: every search box is a plain GET form that works without this
 * script. For each <input data-suggest="/api/suggest">, typing asks the JSON API for matching
 * article titles (debounced) and shows them as a listbox under the box (ARIA combobox pattern):
 * Up/Down move, Enter opens the highlighted article, Esc closes the list.
 * Titles are inserted with textContent, never as HTML. The page gives the words screen readers
 * hear in its own language (data-suggest-label, data-suggest-status).
 */
(function () {
  "use strict";

  var DELAY_MS = 150;
  var counter = 0;

  function longEnough(text) {
    // One CJK character is already a word; Latin needs two letters to be useful.
    return text.length >= 2 || /[^\u0000-\u007f]/.test(text);
  }

  function setup(input) {
    var endpoint = input.getAttribute("data-suggest");
    var lang = input.getAttribute("data-suggest-lang") || "";
    // Link to this site's own article pages (the API's absolute URLs use BASE_URL).
    var articleBase = input.getAttribute("data-article-base") || "/articles/";
    var label = input.getAttribute("data-suggest-label") || "Suggested articles";
    var statusText = input.getAttribute("data-suggest-status") || "Use the arrow keys to choose a suggestion.";
    var listId = (input.id || "search-" + (++counter)) + "-suggestions";
    var list = document.createElement("ul");
    var status = document.createElement("p");
    var timer = null;
    var controller = null;
    var active = -1;
    var lastQuery = "";

    list.id = listId;
    list.className = "suggest-list";
    list.setAttribute("role", "listbox");
    list.setAttribute("aria-label", label);
    list.hidden = true;
    status.className = "visually-hidden";
    status.setAttribute("role", "status");
    status.setAttribute("aria-live", "polite");
    input.insertAdjacentElement("afterend", list);
    list.insertAdjacentElement("afterend", status);
    input.setAttribute("role", "combobox");
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-controls", listId);
    input.setAttribute("aria-expanded", "false");

    function options() {
      return list.querySelectorAll("[role=option]");
    }

    function close() {
      list.hidden = true;
      active = -1;
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
    }

    function highlight(index) {
      var items = options();
      if (!items.length) { return; }
      active = (index + items.length) % items.length;
      for (var i = 0; i < items.length; i++) {
        items[i].setAttribute("aria-selected", i === active ? "true" : "false");
      }
      input.setAttribute("aria-activedescendant", items[active].id);
      items[active].scrollIntoView({block: "nearest"});
    }

    function show(suggestions) {
      list.textContent = "";
      suggestions.forEach(function (item, i) {
        var li = document.createElement("li");
        var link = document.createElement("a");
        li.id = listId + "-" + i;
        li.setAttribute("role", "option");
        li.setAttribute("aria-selected", "false");
        link.href = articleBase + encodeURIComponent(item.slug);
        link.tabIndex = -1;
        link.textContent = item.title;
        li.appendChild(link);
        list.appendChild(li);
      });
      active = -1;
      list.hidden = suggestions.length === 0;
      input.setAttribute("aria-expanded", suggestions.length ? "true" : "false");
      status.textContent = suggestions.length ? statusText : "";
    }

    function fetchSuggestions(text) {
      if (controller) { controller.abort(); }
      controller = new AbortController();
      var url = endpoint + "?q=" + encodeURIComponent(text) + (lang ? "&lang=" + encodeURIComponent(lang) : "");
      fetch(url, {signal: controller.signal, headers: {"Accept": "application/json"}})
        .then(function (response) { return response.ok ? response.json() : {suggestions: []}; })
        .then(function (data) {
          if (text === lastQuery) { show(data.suggestions || []); }
        })
        .catch(function () { /* aborted or offline: the form still works */ });
    }

    input.addEventListener("input", function () {
      var text = input.value.trim();
      lastQuery = text;
      window.clearTimeout(timer);
      if (!longEnough(text)) { show([]); close(); return; }
      timer = window.setTimeout(function () { fetchSuggestions(text); }, DELAY_MS);
    });

    input.addEventListener("keydown", function (event) {
      if (event.key === "Escape") {
        if (!list.hidden) { event.preventDefault(); close(); }
      } else if (event.key === "ArrowDown" && !list.hidden) {
        event.preventDefault();
        highlight(active + 1);
      } else if (event.key === "ArrowUp" && !list.hidden) {
        event.preventDefault();
        highlight(active - 1);
      } else if (event.key === "Enter" && !list.hidden && active >= 0) {
        event.preventDefault();
        window.location.assign(options()[active].querySelector("a").href);
      }
    });

    // Keep focus in the box while a suggestion is clicked, so the click is not lost to blur.
    list.addEventListener("mousedown", function (event) { event.preventDefault(); });
    input.addEventListener("blur", close);
  }

  function init() {
    var inputs = document.querySelectorAll("input[data-suggest]");
    if (!window.fetch || !inputs.length) { return; }
    for (var i = 0; i < inputs.length; i++) { setup(inputs[i]); }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
}());
