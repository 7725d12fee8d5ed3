// Arbill's page behaviour. The Content-Security-Policy (app/web/security.py) runs no inline script and no
// `on…=` / `hx-on` handler, so what a page does beyond htmx is here, bound by data attributes.
"use strict";

// <form data-confirm="Delete this draft?">: submitted only after the person confirms.
document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-confirm]");
  if (form && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
    event.stopImmediatePropagation();
  }
}, true);

// <select data-autosubmit>: choosing a value sends its form (the legal-entity switcher).
document.addEventListener("change", (event) => {
  const select = event.target.closest("select[data-autosubmit]");
  if (select && select.form) {
    select.form.requestSubmit();
  }
});

// Tabs (_macros.html `tabs`): after htmx loaded a tab's panel, that tab is the selected one.
document.addEventListener("htmx:afterRequest", (event) => {
  const tab = event.detail.elt;
  if (!event.detail.successful || !tab.matches || !tab.matches("nav.tabs [role=tab]")) {
    return;
  }
  for (const other of tab.closest("nav.tabs").querySelectorAll("[role=tab]")) {
    const on = other === tab;
    other.classList.toggle("active", on);
    other.setAttribute("aria-selected", on ? "true" : "false");
  }
});

// <input type="checkbox" data-select-all="invoice"> in a table's head: ticks or clears every box named
// "invoice" in that table, and shows itself ticked / partly ticked as those boxes change.
document.addEventListener("change", (event) => {
  const box = event.target;
  const table = box.closest && box.type === "checkbox" ? box.closest("table") : null;
  const all = table ? table.querySelector("input[data-select-all]") : null;
  if (!all) {
    return;
  }
  const boxes = [...table.querySelectorAll(`input[type=checkbox][name="${all.dataset.selectAll}"]`)];
  if (box === all) {
    for (const each of boxes) {
      each.checked = all.checked;
    }
    return;
  }
  const ticked = boxes.filter((each) => each.checked).length;
  all.checked = boxes.length > 0 && ticked === boxes.length;
  all.indeterminate = ticked > 0 && ticked < boxes.length;
});

// The phone's Menu button (base.html): shows and hides the menus; aria-expanded says which. Only once this
// script runs are the menus folded (.nav-ready), so a page without script keeps them open.
for (const toggle of document.querySelectorAll("[data-nav-toggle]")) {
  const nav = toggle.closest("nav");
  nav.classList.add("nav-ready");
  toggle.addEventListener("click", () => {
    const open = toggle.getAttribute("aria-expanded") !== "true";
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
    nav.classList.toggle("nav-open", open);
  });
}

// Escape closes the open menu or panel (<details>) the focus is in, and leaves the focus on its summary.
document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape") {
    return;
  }
  const details = event.target.closest && event.target.closest("details[open]");
  if (details) {
    details.open = false;
    details.querySelector("summary").focus();
    return;
  }
  const toggle = document.querySelector("[data-nav-toggle][aria-expanded=true]");
  if (toggle && toggle.closest("nav").contains(event.target)) {
    toggle.click();
    toggle.focus();
  }
});

// A panel that asks for a decision (a run's preview, a confirm step) takes the focus when htmx shows it, so a
// keyboard user is at its Confirm and Cancel and a screen reader reads it: <… data-focus-on-load tabindex="-1">.
document.addEventListener("htmx:afterSwap", (event) => {
  const panel = event.detail.target.querySelector("[data-focus-on-load]");
  if (panel) {
    panel.focus();
  }
});
