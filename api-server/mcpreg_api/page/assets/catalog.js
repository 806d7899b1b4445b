// The catalogue page's progressive enhancement: search as you type and instant filters over the cards
// the server rendered, copy buttons for the install snippets, and following the catalogue's reloads.
// Without this script the page still works: the filter form submits, and the server hides the cards.
"use strict";
(function () {
  var body = document.body;
  var updates = document.getElementById("updates");
  document.documentElement.classList.add("js");

  function announce(text) {
    updates.textContent = text;
  }

  // --- search and filters -------------------------------------------------------------------------
  var form = document.getElementById("filters");
  var index = [];

  function indexCards() {
    var cards = document.querySelectorAll("#results > .card");
    index = [];
    for (var i = 0; i < cards.length; i++) {
      var card = cards[i];
      var parts = [];
      ["h2", ".name", ".desc"].forEach(function (selector) {
        var found = card.querySelector(selector);
        if (found) parts.push(found.textContent);
      });
      var tags = [];
      card.querySelectorAll(".tags li").forEach(function (li) { tags.push(li.textContent); });
      index.push({
        card: card,
        text: parts.concat(tags).join("\n").toLowerCase(),
        tags: tags,
        tier: (card.getAttribute("data-tier") || "").toLowerCase(),
        transports: (card.getAttribute("data-transports") || "").split(" "),
        status: card.getAttribute("data-status") || ""
      });
    }
  }

  function currentFilters() {
    var values = {};
    ["q", "tag", "tier", "transport", "status"].forEach(function (name) {
      values[name] = (form.elements[name].value || "").trim();
    });
    return values;
  }

  function applyFilters() {
    var f = currentFilters();
    var needle = f.q.toLowerCase();
    var tier = f.tier.toLowerCase();
    var shown = 0;
    for (var i = 0; i < index.length; i++) {
      var item = index[i];
      var visible = (!needle || item.text.indexOf(needle) !== -1) &&
        (!f.tag || item.tags.indexOf(f.tag) !== -1) &&
        (!tier || item.tier === tier) &&
        (!f.transport || item.transports.indexOf(f.transport) !== -1) &&
        (f.status ? item.status === f.status : item.status !== "deleted");
      if (item.card.hidden === visible) item.card.hidden = !visible;
      if (visible) shown++;
    }
    var count = document.getElementById("count");
    var total = Number(count.getAttribute("data-total"));
    count.textContent = shown === total ? total + " servers" : shown + " of " + total + " servers";
    document.getElementById("empty").hidden = shown !== 0;
    var params = new URLSearchParams();
    Object.keys(f).forEach(function (name) { if (f[name]) params.set(name, f[name]); });
    var search = params.toString();
    history.replaceState(null, "", location.pathname + (search ? "?" + search : ""));
  }

  if (form) {
    indexCards();
    var pending = 0;
    form.addEventListener("input", function (event) {
      if (event.target.name === "q") {
        // Coalesce keystrokes: one pass over the cards per animation frame, however fast the typing.
        if (!pending) pending = requestAnimationFrame(function () { pending = 0; applyFilters(); });
      }
    });
    form.addEventListener("change", applyFilters);
    form.addEventListener("submit", function (event) { event.preventDefault(); applyFilters(); });
  }

  // --- copy buttons ---------------------------------------------------------------------------------
  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
    // Plain http to a cluster-internal host is not a secure context: fall back to a selection.
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "offscreen";
    document.body.appendChild(area);
    area.select();
    var ok = document.execCommand("copy");
    document.body.removeChild(area);
    return ok ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }

  function showCopyButtons() {
    document.querySelectorAll("button.copy").forEach(function (button) { button.hidden = false; });
  }
  showCopyButtons();
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("button.copy") : null;
    if (!button) return;
    var block = document.getElementById(button.getAttribute("data-copy"));
    var label = document.getElementById("h-" + button.getAttribute("data-copy"));
    copyText(block.textContent).then(function () {
      button.textContent = "Copied";
      announce("Copied the " + label.textContent + " snippet to the clipboard.");
      setTimeout(function () { button.textContent = "Copy"; }, 2000);
    }, function () {
      announce("Copying was refused by the browser: select the text and copy it by hand.");
    });
  });

  // --- following the catalogue's reloads ------------------------------------------------------------
  var generation = body.getAttribute("data-generation");
  var seconds = Number(body.getAttribute("data-poll-seconds")) || 5;

  function refresh(next) {
    return fetch(location.href, { cache: "no-cache", credentials: "same-origin" }).then(function (response) {
      if (!response.ok) return;
      return response.text().then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        var keep = form ? currentFilters() : null;
        var results = document.getElementById("results");
        if (results && fresh.getElementById("results")) {
          results.innerHTML = fresh.getElementById("results").innerHTML;
          ["tag", "tier", "transport", "status"].forEach(function (name) {
            var select = form.elements[name];
            var freshSelect = fresh.getElementById(select.id);
            if (freshSelect) select.innerHTML = freshSelect.innerHTML;
            select.value = keep[name];
          });
          document.getElementById("count").setAttribute(
            "data-total", fresh.getElementById("count").getAttribute("data-total"));
          indexCards();
          applyFilters();
        } else {
          document.getElementById("main").innerHTML = fresh.getElementById("main").innerHTML;
          showCopyButtons();
        }
        var meta = fresh.getElementById("catalog-meta");
        if (meta) document.getElementById("catalog-meta").textContent = meta.textContent;
        generation = next;
        body.setAttribute("data-generation", next);
        announce("The catalogue was updated: the page shows the new version.");
      });
    });
  }

  function poll() {
    fetch("/catalog/generation", { cache: "no-cache", credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (state) {
        if (state && state.generation && state.generation !== generation) return refresh(state.generation);
      })
      .catch(function () { /* the server is restarting or unreachable: try again next time */ })
      .then(function () { setTimeout(poll, seconds * 1000); });
  }
  setTimeout(poll, seconds * 1000);
})();
