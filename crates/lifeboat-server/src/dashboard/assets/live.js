// Lifeboat dashboard: refreshes the parts of a page marked data-live="URL" every two
// seconds while the page is visible. Pages read fully without it.
(function () {
  "use strict";
  var parts = document.querySelectorAll("[data-live]");
  if (!parts.length) { return; }
  function refresh() {
    if (document.hidden) { return; }
    parts.forEach(function (el) {
      fetch(el.getAttribute("data-live"), { credentials: "same-origin" })
        // A session that ended is sent to the login page: show it whole, not inside a part.
        .then(function (r) {
          if (r.redirected) { location.reload(); return null; }
          return r.ok ? r.text() : null;
        })
        .then(function (html) { if (html !== null) { el.innerHTML = html; } })
        .catch(function () {});
    });
  }
  setInterval(refresh, 2000);
})();
