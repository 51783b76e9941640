// agent-exporter web pages: the filter form applies itself as it changes (the Apply button does the
// same without JavaScript). Nothing else runs here; the pages work without this file.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  for (const form of document.querySelectorAll("form.filters")) {
    form.addEventListener("change", (event) => {
      const field = event.target;
      const range = form.elements.namedItem("range");
      const custom = range instanceof HTMLSelectElement && range.value === "custom";
      if (field === range && custom) {
        const since = form.elements.namedItem("since");
        if (since instanceof HTMLInputElement) since.focus();
        return; // wait for the dates
      }
      if (custom && field instanceof HTMLInputElement && field.type === "date" && !field.value) return;
      form.requestSubmit();
    });
  }
});
