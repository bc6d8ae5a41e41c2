// Progressive enhancement only: every form and link works without this file.
(function () {
  "use strict";

  // Confirm destructive forms (disconnect, revoke, delete).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  });

  // Copy buttons: data-copy names the input whose value is copied.
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-copy]") : null;
    if (!button) return;
    var input = document.getElementById(button.getAttribute("data-copy"));
    if (!input) return;
    input.select();
    var done = function () { button.textContent = "Copied"; };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(input.value).then(done, function () {
        document.execCommand("copy"); done();
      });
    } else {
      document.execCommand("copy"); done();
    }
  });

  // Revealed secrets disappear after their time (the page also refreshes away without script).
  document.addEventListener("DOMContentLoaded", function () {
    var box = document.getElementById("revealed");
    if (!box) return;
    var left = parseInt(box.getAttribute("data-hide-after"), 10) || 30;
    var countdown = document.getElementById("reveal-countdown");
    var tick = function () {
      if (countdown) countdown.textContent = "Hidden in " + left + " s.";
      if (left <= 0) {
        box.querySelectorAll(".secret-value").forEach(function (el) { el.textContent = ""; });
        box.hidden = true;
        var note = document.getElementById("reveal-hidden");
        if (note) note.hidden = false;
        return;
      }
      left -= 1;
      window.setTimeout(tick, 1000);
    };
    tick();
  });
})();
