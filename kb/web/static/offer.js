// The case page's "Make it right" form: fill the message to the customer from the chosen gesture's
// template (already in the customer's language) as the agent chooses it and types the amount or the
// reference. Text the agent has edited is never overwritten. Without this script the agent presses
// "Prepare message" and the server fills the same template (with it, that button puts the template back).
(function () {
  "use strict";
  var form = document.getElementById("offer-form");
  if (!form) { return; }
  var gesture = document.getElementById("offer-gesture");
  var amount = document.getElementById("offer-amount");
  var reference = document.getElementById("offer-reference");
  var message = document.getElementById("offer-message");
  if (!gesture || !amount || !reference || !message) { return; }
  // What the script (or the server's prepare step) last wrote: while the message still reads so,
  // the agent has not edited it and a new choice may replace it.
  // A message the server shows after a refused submit is the agent's own: only an empty one, or
  // one the server prepared from the template, may be replaced.
  var written = message.getAttribute("data-prepared") === "yes" ? message.value : "";

  function amountText(raw, lang) {
    var text = raw.trim();
    var value = Number(text);
    if (text === "" || !isFinite(value) || !window.Intl) { return text; }
    var whole = Math.round(value) === value;
    try {
      return new Intl.NumberFormat(lang, {minimumFractionDigits: whole ? 0 : 2, maximumFractionDigits: 2}).format(value);
    } catch (e) {
      return text;
    }
  }

  function fill(template, values) {
    // The placeholders kb/recovery/wording.py knows; any other {word} stays as written.
    return template.replace(/\{(name|amount|currency|reference|agent|gesture)\}/g, function (_, key) {
      return values[key] || "";
    });
  }

  function update() {
    var option = gesture.options[gesture.selectedIndex];
    var template = option ? option.getAttribute("data-template") : null;
    if (template === null || message.value !== written) { return; }
    message.value = fill(template, {
      name: form.getAttribute("data-name") || "",
      agent: form.getAttribute("data-agent") || "",
      gesture: option.getAttribute("data-gesture") || "",
      currency: option.getAttribute("data-unit") || "",
      amount: option.getAttribute("data-amount") === "yes" ? amountText(amount.value, form.getAttribute("data-lang") || "en") : "",
      reference: reference.value.trim()
    });
    written = message.value;
  }

  gesture.addEventListener("change", update);
  amount.addEventListener("input", update);
  reference.addEventListener("input", update);
}());
