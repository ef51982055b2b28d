// Consentry console: the little the pages need beyond HTML forms. No inline script, no eval (see the CSP).
// - drag-and-drop onto a photo field (the dropped file becomes the <input type=file>'s file);
// - the operations page's live part, re-fetched as server-rendered HTML every few seconds.
"use strict";

function showName(input) {
  const out = document.getElementById(input.id + "-name") || document.getElementById("photo-name");
  if (out) out.textContent = input.files.length ? "Selected: " + input.files[0].name : "";
}

function dropZone(zone) {
  const input = document.getElementById(zone.dataset.dropFor);
  if (!input) return;
  input.addEventListener("change", () => showName(input));
  ["dragenter", "dragover"].forEach((t) => zone.addEventListener(t, (e) => {
    e.preventDefault();
    zone.classList.add("over");
  }));
  ["dragleave", "drop"].forEach((t) => zone.addEventListener(t, () => zone.classList.remove("over")));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    if (e.dataTransfer && e.dataTransfer.files.length) {
      input.files = e.dataTransfer.files;
      showName(input);
    }
  });
}

function liveRegion(el) {
  const url = el.dataset.refreshUrl;
  const seconds = Math.max(2, parseInt(el.dataset.refreshSeconds || "5", 10));
  async function refresh() {
    try {
      const resp = await fetch(url, {credentials: "same-origin", headers: {"Accept": "text/html"}});
      if (resp.redirected || !resp.ok) return;  // signed out or refused: keep what is shown
      const doc = new DOMParser().parseFromString(await resp.text(), "text/html");
      el.replaceChildren(...doc.body.childNodes);
    } catch (err) {
      // the server is unreachable for a moment: try again on the next tick
    }
  }
  setInterval(refresh, seconds * 1000);
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-drop-for]").forEach(dropZone);
  document.querySelectorAll("[data-refresh-url]").forEach(liveRegion);
});
