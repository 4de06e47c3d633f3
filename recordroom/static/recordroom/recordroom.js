// RecordRoom's small behaviours. No inline scripts anywhere (Content-Security-Policy).
(function () {
  "use strict";
  // Automatic log-off: after the idle limit with no activity, reload so the server ends
  // the session and shows the sign-in page (the server enforces it regardless).
  var minutes = parseInt(document.body.dataset.idleMinutes || "0", 10);
  if (minutes > 0) {
    var timer;
    var arm = function () {
      clearTimeout(timer);
      timer = setTimeout(function () { window.location.reload(); }, (minutes * 60 + 5) * 1000);
    };
    ["keydown", "mousedown", "touchstart"].forEach(function (name) {
      document.addEventListener(name, arm, { passive: true });
    });
    arm();
  }
  // htmx: send the CSRF token with every non-GET request.
  document.addEventListener("htmx:configRequest", function (event) {
    var match = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    var token = input ? input.value : match ? decodeURIComponent(match[1]) : "";
    if (token) { event.detail.headers["X-CSRFToken"] = token; }
  });
})();
