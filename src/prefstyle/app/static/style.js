// "Your style" and download pages: poll the style's status while it is rendered in the background,
// then reload the page (or go to the download) when it is ready; move the taste's sliders and see the
// held-out photos re-rendered (api/nudge, also rendered in the background); show that a .cube is
// being prepared instead of a silent wait.
(function () {
  "use strict";

  async function getJSON(url) {
    var resp = await fetch(url, { credentials: "same-origin", cache: "no-store" });
    var data = await resp.json().catch(function () { return {}; });
    return { ok: resp.ok, data: data };
  }

  // --- the style (or a download) rendered in the background ---------------------------------
  var box = document.getElementById("style-wait");
  if (box) {
    var text = document.getElementById("style-wait-text");
    var url = box.dataset.status, next = box.dataset.next;
    var delay = 1000, started = Date.now();
    var done = function () { if (next) window.location.assign(next); else window.location.reload(); };
    var poll = async function () {
      try {
        var r = await getJSON(url), data = r.data;
        if (r.ok && data.ready) { done(); return; }
        if (r.ok && (next ? (url.indexOf("lut=1") >= 0 ? data.lut_ready : data.style_ready) : false)) { done(); return; }
        if (data.state === "failed" || (!r.ok && data.error)) {
          text.textContent = data.message || data.error || "Something went wrong; reload the page to try again.";
          box.classList.add("failed");
          return;
        }
        if (data.text) {
          var secs = Math.round((Date.now() - started) / 1000);
          text.textContent = data.text + (secs >= 3 ? " (" + secs + " s)" : "");
        }
      } catch (err) {
        text.textContent = "Connection lost, trying again…";
      }
      delay = Math.min(3000, delay + 250);
      setTimeout(poll, delay);
    };
    setTimeout(poll, 500);
  }

  // --- the .cube download: say that it is being prepared, start it when ready ---------------
  var lutLink = document.getElementById("dl-lut");
  if (lutLink) {
    lutLink.addEventListener("click", function (ev) {
      ev.preventDefault();
      var href = lutLink.getAttribute("href"), q = href.indexOf("?");
      var statusUrl = q >= 0 ? lutLink.dataset.nudgeStatus + href.slice(q) + "&lut=1" : lutLink.dataset.styleStatus;
      var wait = document.getElementById("dl-lut-wait"), wtext = document.getElementById("dl-lut-text");
      var started = Date.now();
      wait.classList.remove("hidden", "failed");
      wtext.textContent = "Preparing your .cube…";
      var check = async function () {
        try {
          var r = await getJSON(statusUrl);
          if (r.ok && r.data.lut_ready) {
            wtext.textContent = "Ready: downloading.";
            window.location.assign(href);
            setTimeout(function () { wait.classList.add("hidden"); }, 2500);
            return;
          }
          if (!r.ok || r.data.state === "failed") {
            wtext.textContent = r.data.error || r.data.message || "The .cube could not be prepared; try again.";
            wait.classList.add("failed");
            return;
          }
          var secs = Math.round((Date.now() - started) / 1000);
          wtext.textContent = "Preparing your .cube… (" + secs + " s)";
        } catch (err) {
          wtext.textContent = "Connection lost, trying again…";
        }
        setTimeout(check, 700);
      };
      check();
    });
  }

  // --- the sliders ------------------------------------------------------------------------
  var panel = document.getElementById("sliders");
  if (!panel) return;
  var inputs = Array.prototype.slice.call(panel.querySelectorAll("input[type=range]"));
  var state = document.getElementById("nudge-state");
  var previews = Array.prototype.slice.call(document.querySelectorAll("#heldout img.mine"));
  var learnedSrc = previews.map(function (img) { return img.getAttribute("src"); });
  var current = "", timer = null;

  function show(input) {
    var v = parseFloat(input.value), d = parseInt(input.dataset.digits, 10) || 0;
    var t = (v > 0 ? "+" : "") + v.toFixed(d);
    if (parseFloat(t) === 0) t = (0).toFixed(d);
    document.getElementById("out-" + input.name).textContent = t + (input.dataset.unit === "EV" ? " EV" : "");
    var moved = Math.abs(v - parseFloat(input.dataset.learned)) >= parseFloat(input.step) / 2;
    input.classList.toggle("moved", moved);
  }

  function query() {
    return inputs.map(function (i) { return encodeURIComponent(i.name) + "=" + encodeURIComponent(i.value); }).join("&");
  }

  function setState(msg, busy) {
    state.innerHTML = "";
    if (busy) {
      var sp = document.createElement("span");
      sp.className = "spinner";
      sp.setAttribute("aria-hidden", "true");
      state.appendChild(sp);
    }
    state.appendChild(document.createTextNode(msg));
  }

  function apply(data) {
    (data.previews || []).forEach(function (p, k) { if (previews[k]) previews[k].src = p.url; });
    var dl = data.downloads || {};
    Object.keys(dl).forEach(function (k) {
      var a = document.getElementById(k === "cube" ? "dl-lut" : "dl-" + k);
      if (a) a.setAttribute("href", dl[k]);
    });
    setState(data.learned ? "Your learned values." : "Showing your adjusted sliders; the downloads include them.", false);
  }

  async function nudge(q, tries) {
    if (q !== current) return; // a newer move was made
    try {
      var r = await getJSON(panel.dataset.nudge + "?" + q);
      if (q !== current) return;
      if (!r.ok) { setState(r.data.error || "These values could not be used.", false); return; }
      if (r.data.ready) { apply(r.data); return; }
      if (r.data.state === "failed") { setState(r.data.message || "Could not re-render; move a slider to try again.", false); return; }
      setState("Re-rendering your photos…", true);
    } catch (err) {
      setState("Connection lost, trying again…", true);
    }
    setTimeout(function () { nudge(q, tries + 1); }, Math.min(2000, 400 + 100 * tries));
  }

  function changed() {
    current = query();
    clearTimeout(timer);
    setState("Re-rendering your photos…", true);
    timer = setTimeout(function () { nudge(current, 0); }, 250);
  }

  inputs.forEach(function (input) {
    show(input);
    input.addEventListener("input", function () { show(input); });
    input.addEventListener("change", changed);
  });
  document.getElementById("nudge-reset").addEventListener("click", function () {
    inputs.forEach(function (i) { i.value = i.dataset.learned; show(i); });
    previews.forEach(function (img, k) { img.src = learnedSrc[k]; });
    changed();
  });
})();
