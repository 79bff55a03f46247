// "Your style" and download pages: poll the style's status while it is rendered in the background,
// then reload the page (or go to the download) when it is ready.
(function () {
  "use strict";
  var box = document.getElementById("style-wait");
  if (!box) return;
  var text = document.getElementById("style-wait-text");
  var url = box.dataset.status, next = box.dataset.next;
  var delay = 1000, started = Date.now();

  function done() { if (next) window.location.assign(next); else window.location.reload(); }

  async function poll() {
    try {
      var resp = await fetch(url, { credentials: "same-origin", cache: "no-store" });
      var data = await resp.json().catch(function () { return {}; });
      if (resp.ok && data.ready) { done(); return; }
      if (resp.ok && (next ? (url.indexOf("lut=1") >= 0 ? data.lut_ready : data.style_ready) : false)) { done(); return; }
      if (data.state === "failed") { text.textContent = data.message || "Something went wrong; reload the page to try again."; box.classList.add("failed"); return; }
      if (data.text) {
        var secs = Math.round((Date.now() - started) / 1000);
        text.textContent = data.text + (secs >= 3 ? " (" + secs + " s)" : "");
      }
    } catch (err) {
      text.textContent = "Connection lost, trying again…";
    }
    delay = Math.min(3000, delay + 250);
    setTimeout(poll, delay);
  }
  setTimeout(poll, 500);
})();
