// The study page: show a pair, measure the response time, send the answer, show the next pair.
// Answers are sent one at a time; the server stores each before it serves the next pair, and a
// retried request (network trouble, server restart) is recognised as the same answer.
(function () {
  "use strict";
  var root = document.getElementById("study");
  if (!root) return;
  var api = root.dataset.api;
  var allowUndecided = root.dataset.undecided === "yes";
  var imgA = document.getElementById("img-a"), imgB = document.getElementById("img-b");
  var pickA = document.getElementById("pick-a"), pickB = document.getElementById("pick-b");
  var pickU = document.getElementById("pick-u");
  var bar = document.getElementById("progress-bar"), count = document.getElementById("progress-count");
  var styleLink = document.getElementById("style-link"), status = document.getElementById("status");
  var current = null, shownAt = 0, busy = true;

  function sleep(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }
  function setBusy(b) { busy = b; root.classList.toggle("busy", b); root.dataset.ready = b ? "no" : "yes"; }

  function loadImage(img, url) {
    return new Promise(function (resolve, reject) {
      img.onload = function () { resolve(); };
      img.onerror = function () { reject(new Error("an image did not load")); };
      img.src = url;
    });
  }

  function updateProgress(p) {
    if (!p) return;
    bar.style.width = (100 * p.answered / Math.max(1, p.total)).toFixed(1) + "%";
    count.textContent = p.answered + " / " + p.total;
    styleLink.classList.toggle("hidden", !p.style_ready);
  }

  async function request(method, url, body) {
    for (var attempt = 0; ; attempt++) {
      var resp;
      try {
        resp = await fetch(url, {
          method: method, credentials: "same-origin", cache: "no-store",
          headers: body ? { "Content-Type": "application/json" } : {},
          body: body ? JSON.stringify(body) : undefined
        });
      } catch (err) {  // network error: the server may be restarting; the same request is safe to repeat
        if (attempt >= 8) throw err;
        status.textContent = "Connection lost, trying again…";
        await sleep(Math.min(8000, 500 * Math.pow(2, attempt)));
        continue;
      }
      var data = await resp.json().catch(function () { return {}; });
      if (resp.ok) { status.textContent = ""; return data; }
      if (resp.status >= 500 && attempt < 5) { await sleep(500 * (attempt + 1)); continue; }
      var e = new Error(data.error || ("error " + resp.status));
      e.status = resp.status;
      throw e;
    }
  }

  async function show(data) {
    updateProgress(data.progress);
    if (data.done) { window.location.assign(data.style_url); return; }
    current = data.question;
    setBusy(true);
    pickA.classList.remove("chosen"); pickB.classList.remove("chosen");
    await Promise.all([loadImage(imgA, current.a.url), loadImage(imgB, current.b.url)]);
    await new Promise(function (r) { requestAnimationFrame(function () { requestAnimationFrame(r); }); });
    root.dataset.question = String(current.id);
    root.dataset.position = String(current.position);
    shownAt = performance.now();
    setBusy(false);
  }

  async function answer(choice) {
    if (busy || !current) return;
    var ms = Math.round(performance.now() - shownAt);
    setBusy(true);
    if (choice === "a") pickA.classList.add("chosen");
    if (choice === "b") pickB.classList.add("chosen");
    try {
      var data = await request("POST", api + "/answer", {
        question_id: current.id, a: current.a.id, b: current.b.id, choice: choice, response_ms: ms
      });
      await show(data);
    } catch (err) {
      if (err.status === 409) {  // out of step with the server (another tab?): take its current pair
        try { await show(await request("GET", api + "/question")); return; } catch (e2) { err = e2; }
      }
      status.textContent = "Your answer could not be saved (" + err.message + "). Reload the page to continue.";
    }
  }

  pickA.addEventListener("click", function () { answer("a"); });
  pickB.addEventListener("click", function () { answer("b"); });
  if (pickU) pickU.addEventListener("click", function () { answer("undecided"); });
  document.addEventListener("keydown", function (ev) {
    if (ev.altKey || ev.ctrlKey || ev.metaKey) return;
    if (ev.key === "ArrowLeft") { ev.preventDefault(); answer("a"); }
    else if (ev.key === "ArrowRight") { ev.preventDefault(); answer("b"); }
    else if (allowUndecided && (ev.key === "ArrowDown" || ev.key === "u")) { ev.preventDefault(); answer("undecided"); }
  });

  request("GET", api + "/question").then(show).catch(function (err) {
    status.textContent = "The study could not load (" + err.message + "). Reload the page to try again.";
  });
})();
