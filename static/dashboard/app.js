// MT5 Guard page behaviour: the browser's time zone for server-rendered times, countdowns, the live socket's
// status (htmx ws extension: it reconnects with full-jitter back-off; we resync the page after a reconnect),
// two-step confirmations for destructive forms, and toasts.
(function () {
  "use strict";
  var tz = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (tz && document.cookie.indexOf("tz=" + encodeURIComponent(tz)) === -1) {
    document.cookie = "tz=" + encodeURIComponent(tz) + "; path=/; max-age=31536000; samesite=lax";
  }

  function pad(n) { return n < 10 ? "0" + n : "" + n; }
  // A countdown that reaches its time (a daily reset) asks the server for the page's live regions again, which
  // carry the next one, instead of resting at 0:00 until the account's next push (at most once a minute).
  var lastPassedResync = 0;
  function tickCountdowns() {
    var now = Date.now(), passed = false;
    document.querySelectorAll(".countdown[data-until]").forEach(function (el) {
      var until = Date.parse(el.getAttribute("data-until"));
      if (isNaN(until)) { return; }
      var s = Math.max(0, Math.round((until - now) / 1000));
      var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
      el.textContent = (h ? h + ":" + pad(m) : m) + ":" + pad(sec);
      if (until <= now && !el.hasAttribute("data-passed")) { el.setAttribute("data-passed", ""); passed = true; }
    });
    if (passed && now - lastPassedResync > 60000 && window.htmx) {
      lastPassedResync = now;
      htmx.trigger(document.body, "live:resync");
    }
  }
  setInterval(tickCountdowns, 1000);
  document.addEventListener("DOMContentLoaded", tickCountdowns);
  document.addEventListener("htmx:afterSettle", tickCountdowns);

  // The live socket: status pill, and a resync of the page's live regions after every reconnect (what was pushed
  // while the socket was down is re-read from the server).
  var opened = 0;
  var socket = null;
  // The overview tells its socket which rows it shows, so the server pushes those rows and not the whole
  // fleet's (a page shows 50 of perhaps 1 000 accounts). Sent on every (re)connect and after every table swap.
  function sendShownRows() {
    var table = document.getElementById("overview-table");
    if (!socket || !table || !table.hasAttribute("data-live-rows")) { return; }
    var text = table.getAttribute("data-live-rows");
    var rows = text ? text.split(",").map(Number) : [];
    socket.send(JSON.stringify({ rows: rows }));
  }
  document.addEventListener("htmx:afterSettle", function (event) {
    var target = event.detail && event.detail.elt;
    if (target && (target.id === "overview-table" || (target.querySelector && target.querySelector("#overview-table")))) {
      sendShownRows();
    }
  });
  function status(state, text) {
    var el = document.getElementById("live-status");
    if (el) { el.setAttribute("data-state", state); el.textContent = text; }
  }
  document.addEventListener("htmx:wsOpen", function (event) {
    socket = event.detail && event.detail.socketWrapper;
    sendShownRows();
    opened += 1;
    status("open", "live");
    document.body.setAttribute("data-ws-opens", String(opened));
    if (opened > 1) { htmx.trigger(document.body, "live:resync"); }
  });
  document.addEventListener("htmx:wsClose", function () { status("reconnecting", "reconnecting…"); });
  document.addEventListener("htmx:wsAfterMessage", function () {
    var n = Number(document.body.getAttribute("data-ws-messages") || "0") + 1;
    document.body.setAttribute("data-ws-messages", String(n));
    tickCountdowns();
  });

  // Destructive forms take two clicks: the first turns the button into "Confirm", the second submits. The submit
  // button is disabled on submit, so a double click sends one request (and the idempotency key covers the rest).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.classList || !form.classList.contains("confirm")) { return; }
    var button = form.querySelector("button[type=submit]");
    var confirmedAt = Number(form.getAttribute("data-confirmed-at") || "0");
    // A confirmation counts only a moment after it was shown, so a double click cannot skip it.
    if (form.getAttribute("data-confirmed") !== "1" || Date.now() - confirmedAt < 400) {
      event.preventDefault();
      if (form.getAttribute("data-confirmed") === "1") { return; }
      form.setAttribute("data-confirmed", "1");
      form.setAttribute("data-confirmed-at", String(Date.now()));
      if (button) { button.setAttribute("data-label", button.textContent); button.textContent = "Confirm: " + form.getAttribute("data-confirm"); }
      return;
    }
    if (form.getAttribute("data-sent") === "1") { event.preventDefault(); return; }
    form.setAttribute("data-sent", "1");
    if (button) { setTimeout(function () { button.disabled = true; }, 0); }
  }, true);
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") { return; }
    document.querySelectorAll("form.confirm[data-confirmed='1']:not([data-sent='1'])").forEach(function (form) {
      form.removeAttribute("data-confirmed");
      var button = form.querySelector("button[type=submit]");
      if (button && button.getAttribute("data-label")) { button.textContent = button.getAttribute("data-label"); }
    });
  });

  document.addEventListener("toast", function (event) {
    var el = document.getElementById("toast");
    if (!el || !event.detail) { return; }
    el.textContent = event.detail.message || "";
    el.hidden = false;
    setTimeout(function () { el.hidden = true; }, 4000);
  });
})();
