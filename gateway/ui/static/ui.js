// The gateway's web UI: a little progressive enhancement, nothing the pages need to work.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // A click anywhere on a request's row opens it (the time cell is the real link).
  for (const row of document.querySelectorAll("tr[data-href]")) {
    row.addEventListener("click", (event) => {
      if (event.target.closest("a, button, input, select")) return;
      window.location.assign(row.dataset.href);
    });
  }
  // Empty filters stay out of the URL (a shorter link to share).
  for (const form of document.querySelectorAll("form.filters")) {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const params = new URLSearchParams();
      for (const [name, value] of new FormData(form)) {
        if (value !== "") params.append(name, value);
      }
      const query = params.toString();
      window.location.assign(form.getAttribute("action") + (query ? "?" + query : ""));
    });
  }
  // Filters given as a choice apply at once.
  for (const select of document.querySelectorAll("form.filters select")) {
    select.addEventListener("change", () => select.form.requestSubmit());
  }
  // An image whose URL no longer loads (gone from the image store) says so instead of a broken icon.
  for (const img of document.querySelectorAll("img.thumb, img.full")) {
    const gone = () => {
      const note = document.createElement("span");
      note.className = "gone";
      note.textContent = "image expired";
      img.replaceWith(note);
    };
    if (img.complete && img.naturalWidth === 0) gone();
    else img.addEventListener("error", gone);
  }
  // Times shown in UTC get the browser's local time as a tooltip.
  for (const t of document.querySelectorAll("time[datetime]")) {
    const when = new Date(t.getAttribute("datetime"));
    if (!Number.isNaN(when.getTime())) t.title = when.toLocaleString();
  }
});
