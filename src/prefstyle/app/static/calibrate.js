// Screen facts stored with the participant's device (no fingerprinting beyond what the study needs).
(function () {
  "use strict";
  var field = document.getElementById("screen");
  if (!field) return;
  function mq(q) { return window.matchMedia ? window.matchMedia(q).matches : false; }
  field.value = JSON.stringify({
    width: window.screen ? screen.width : null,
    height: window.screen ? screen.height : null,
    dpr: window.devicePixelRatio || 1,
    gamut: mq("(color-gamut: rec2020)") ? "rec2020" : mq("(color-gamut: p3)") ? "p3" : "srgb",
    dark_mode: mq("(prefers-color-scheme: dark)"),
    hdr: mq("(dynamic-range: high)")
  });
})();
