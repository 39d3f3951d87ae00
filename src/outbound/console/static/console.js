// The console's own script: the CSRF header of htmx requests, copy buttons, tabs, confirmations
// and charts. No inline script anywhere (the pages' content policy allows none).
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  // Every htmx request carries the session's CSRF token.
  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-CSRF-Token"] = csrfToken();
  });

  // Copy buttons: data-copy="#id" copies that element's text.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-copy]");
    if (!button) return;
    var source = document.querySelector(button.getAttribute("data-copy"));
    if (!source) return;
    var text = (source.value !== undefined ? source.value : source.textContent).trim();
    var done = function () {
      var label = button.textContent;
      button.textContent = button.getAttribute("data-copied") || "Copied";
      setTimeout(function () { button.textContent = label; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done);
    } else {
      var range = document.createRange();
      range.selectNodeContents(source);
      var selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      try { document.execCommand("copy"); done(); } catch (e) { /* the text stays selected */ }
    }
  });

  // Forms that ask once: data-confirm="What will happen".
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  }, true);

  // The menu's groups (details/summary): one open at a time; Escape or a click elsewhere
  // closes it, Escape bringing the focus back to its summary.
  function closeMenus(except) {
    document.querySelectorAll("details.menu-group[open]").forEach(function (group) {
      if (group !== except) group.removeAttribute("open");
    });
  }
  document.addEventListener("toggle", function (event) {
    var group = event.target;
    if (group.matches && group.matches("details.menu-group") && group.open) closeMenus(group);
  }, true);
  document.addEventListener("click", function (event) {
    if (!event.target.closest("details.menu-group")) closeMenus(null);
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    var group = event.target.closest && event.target.closest("details.menu-group[open]");
    closeMenus(null);
    if (group) group.querySelector("summary").focus();
  });

  // Tabs: buttons role=tab with aria-controls; arrows move between them.
  function selectTab(tab) {
    var list = tab.closest("[role=tablist]");
    list.querySelectorAll("[role=tab]").forEach(function (other) {
      var selected = other === tab;
      other.setAttribute("aria-selected", selected ? "true" : "false");
      other.tabIndex = selected ? 0 : -1;
      var panel = document.getElementById(other.getAttribute("aria-controls"));
      if (panel) panel.hidden = !selected;
    });
  }
  document.addEventListener("click", function (event) {
    var tab = event.target.closest("[role=tab]");
    if (tab) selectTab(tab);
  });
  document.addEventListener("keydown", function (event) {
    var tab = event.target.closest && event.target.closest("[role=tab]");
    if (!tab || (event.key !== "ArrowRight" && event.key !== "ArrowLeft")) return;
    var tabs = Array.prototype.slice.call(tab.closest("[role=tablist]").querySelectorAll("[role=tab]"));
    var next = tabs[(tabs.indexOf(tab) + (event.key === "ArrowRight" ? 1 : tabs.length - 1)) % tabs.length];
    selectTab(next);
    next.focus();
    event.preventDefault();
  });
  function initTabs(root) {
    root.querySelectorAll("[role=tablist]").forEach(function (list) {
      var selected = list.querySelector('[role=tab][aria-selected="true"]') || list.querySelector("[role=tab]");
      if (selected) selectTab(selected);
    });
  }

  // Charts: <div data-chart="id-of-json"> with a <script type="application/json"> holding
  // {"x": [unix seconds], "series": [{"label", "color", "values"}]}.
  function initCharts(root) {
    if (!window.uPlot) return;
    root.querySelectorAll("[data-chart]").forEach(function (el) {
      if (el.dataset.drawn) return;
      var source = document.getElementById(el.getAttribute("data-chart"));
      if (!source) return;
      var data = JSON.parse(source.textContent);
      // Times in the user's zone and language (the page's), not the browser's.
      var lang = data.locale || document.documentElement.lang || "en";
      var daily = data.x.length > 1 && data.x[1] - data.x[0] >= 86400;
      var zone = data.zone || undefined;
      var tick = new Intl.DateTimeFormat(lang, daily
        ? { timeZone: zone, day: "numeric", month: "short" }
        : { timeZone: zone, hour: "2-digit", minute: "2-digit" });
      var full = new Intl.DateTimeFormat(lang, daily
        ? { timeZone: zone, weekday: "short", day: "numeric", month: "short" }
        : { timeZone: zone, day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
      var series = [{
        label: data.time_label || "Time",
        value: function (u, v) { return v == null ? "–" : full.format(new Date(v * 1000)); },
      }].concat(data.series.map(function (s) {
        return { label: s.label, stroke: s.color, fill: s.color + "33", width: 2 };
      }));
      var opts = {
        width: Math.max(el.clientWidth, 280),
        height: 240,
        series: series,
        axes: [
          { incrs: daily ? [86400, 2 * 86400, 7 * 86400, 14 * 86400, 28 * 86400]
                         : [3600, 2 * 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400],
            values: function (u, splits) {
              return splits.map(function (v) { return tick.format(new Date(v * 1000)); });
            } },
          { size: 50 },
        ],
        legend: { show: true },
        scales: { x: { time: true } },
      };
      var values = [data.x].concat(data.series.map(function (s) { return s.values; }));
      el.dataset.drawn = "1";
      var plot = new uPlot(opts, values, el);
      window.addEventListener("resize", function () {
        plot.setSize({ width: Math.max(el.clientWidth, 280), height: 240 });
      });
    });
  }

  // Countdowns: data-countdown="ISO time" shows the time left (m:ss, or h:mm:ss), then
  // data-expired once it has passed.
  function tick() {
    document.querySelectorAll("[data-countdown]").forEach(function (el) {
      var left = Math.floor((Date.parse(el.getAttribute("data-countdown")) - Date.now()) / 1000);
      if (isNaN(left)) return;
      if (left <= 0) { el.textContent = el.getAttribute("data-expired") || "0:00"; return; }
      var h = Math.floor(left / 3600), m = Math.floor((left % 3600) / 60), s = left % 60;
      var pad = function (n) { return (n < 10 ? "0" : "") + n; };
      el.textContent = (h ? h + ":" + pad(m) : m) + ":" + pad(s);
    });
  }
  setInterval(tick, 1000);

  // A conversation's messages open (and stay, as new ones arrive) at the newest.
  function scrollThreads() {
    document.querySelectorAll(".thread").forEach(function (el) { el.scrollTop = el.scrollHeight; });
  }

  // The live stream ends with "signed-out" once the session is over (signed out elsewhere,
  // ended, expired): the stream is closed (not reconnected) and the page asked again, which
  // leads to the sign-in page.
  document.addEventListener("htmx:sseClose", function (event) {
    if (event.detail && event.detail.type === "message") { window.location.reload(); }
  });

  function init(root) {
    tick();
    scrollThreads();
    initTabs(root);
    initCharts(root);
  }
  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:afterSettle", function (event) { init(event.target); });
})();
