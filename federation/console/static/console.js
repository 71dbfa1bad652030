// federation console: progressive enhancement only; every page works without script.
"use strict";

function copyButtons() {
  for (const button of document.querySelectorAll("button[data-copy-target]")) {
    button.addEventListener("click", async () => {
      const field = document.getElementById(button.dataset.copyTarget);
      const status = document.getElementById(button.getAttribute("aria-describedby"));
      try {
        await navigator.clipboard.writeText(field.value);
        status.textContent = "Copied to the clipboard.";
      } catch (error) {
        field.focus();
        field.select();
        status.textContent = "Press Ctrl+C (or Cmd+C) to copy the selected key.";
      }
    });
  }
}

function agentFields() {
  const radios = document.querySelectorAll('input[name="type"]');
  const agentOnly = document.querySelectorAll(".agent-only");
  if (!radios.length) return;
  const update = () => {
    const agent = document.querySelector('input[name="type"]:checked')?.value === "agent";
    for (const block of agentOnly) block.hidden = !agent;
  };
  for (const radio of radios) radio.addEventListener("change", update);
  update();
}

document.addEventListener("DOMContentLoaded", () => {
  copyButtons();
  agentFields();
});
