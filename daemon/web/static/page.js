// telemetryd status page: every 5 s, fetch the page the server draws and swap its parts in.
// One renderer (the server's); no library and nothing from the network. Without scripts the
// page refreshes itself (noscript meta refresh) and its tabs still work (CSS :target).
"use strict";
(function () {
  async function refresh() {
    try {
      const response = await fetch(location.pathname + location.search, {cache: "no-store"});
      const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
      const open = new Set([...document.querySelectorAll("details[open]")].map(d => d.id));
      ["#daemon", "main"].forEach(sel => {
        const now = document.querySelector(sel), next = fresh.querySelector(sel);
        if (now && next) now.replaceWith(document.adoptNode(next));
      });
      open.forEach(id => { const d = document.getElementById(id); if (d) d.open = true; });
      document.querySelectorAll("figure[data-drawn]").forEach(f => { f.dataset.drawn = "js"; });
      document.getElementById("charts").dataset.drawn = "js";
      document.body.dataset.error = "";
    } catch (e) { document.body.dataset.error = String(e); }
  }
  refresh();
  setInterval(refresh, 5000);
})();
