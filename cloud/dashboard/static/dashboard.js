// plantwatch dashboard: local times, live refresh, alarm actions. No library, no network
// beyond this dashboard's own /api/v1/.
"use strict";

const POLL_MS = 1000;

function localize(root) {
  const long = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short",
  });
  const short = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
  for (const el of root.querySelectorAll("time[datetime]")) {
    const when = new Date(el.getAttribute("datetime"));
    if (isNaN(when)) continue;
    el.textContent = long.format(when);
    el.title = "UTC " + when.toISOString().replace(".000Z", "Z");
  }
  for (const el of root.querySelectorAll("text[data-ts]")) {
    const when = new Date(Number(el.dataset.ts) * 1000);
    const title = el.querySelector("title");
    const label = short.format(when);
    el.textContent = label;
    if (title) { title.textContent = "UTC " + when.toISOString().replace(".000Z", "Z"); el.appendChild(title); }
  }
}

let version = null;
let busy = false;

async function refresh() {
  const url = new URL(window.location.href);
  url.searchParams.set("fragment", "1");
  const response = await fetch(url, { headers: { accept: "text/html" } });
  if (!response.ok) return;
  const content = document.getElementById("content");
  const open = [...content.querySelectorAll("details[open]")].map((d) => d.textContent.slice(0, 80));
  content.innerHTML = await response.text();
  for (const d of content.querySelectorAll("details")) {
    if (open.includes(d.textContent.slice(0, 80))) d.open = true;
  }
  localize(content);
  bindActions(content);
}

function showStale(live, text, why) {
  live.classList.add("stale");
  live.textContent = text;
  live.title = why;
}

// A server that answers with an error (503: its state unreadable, or too many connections)
// is up but not serving this page's data: the badge says so rather than "live".
async function poll() {
  if (busy) return;
  busy = true;
  const live = document.getElementById("live");
  try {
    const response = await fetch("/api/v1/version", { cache: "no-store" });
    if (!response.ok) {
      const body = await response.text();
      let why = response.statusText || "no answer";
      try { why = JSON.parse(body).error || why; } catch (error) { /* an empty or plain body */ }
      const name = response.status === 503 ? "unavailable" : "error";
      showStale(live, `${name} (${response.status})`, why);
      return;
    }
    const doc = await response.json();
    live.classList.remove("stale");
    live.textContent = "live";
    live.title = "updates without a reload";
    if (version !== null && doc.version !== version) await refresh();
    version = doc.version;
  } catch (error) {
    showStale(live, "offline", "the dashboard server does not answer");
  } finally {
    busy = false;
  }
}

function bindActions(root) {
  for (const button of root.querySelectorAll("button[data-action]")) {
    button.addEventListener("click", async () => {
      const status = document.getElementById("action-result");
      button.disabled = true;
      const body = {};
      if (button.dataset.seconds) body.snooze_s = Number(button.dataset.seconds);
      const path = ["/api/v1/alarms", encodeURIComponent(button.dataset.model),
        encodeURIComponent(button.dataset.key), button.dataset.action].join("/");
      try {
        const response = await fetch(path, {
          method: "POST",
          headers: { "content-type": "application/json", "x-plantwatch-action": "1" },
          body: JSON.stringify(body),
        });
        const doc = await response.json();
        if (status) {
          status.textContent = response.ok
            ? `${button.dataset.model}/${button.dataset.key}: ${doc.alarm.alarmState.stateName}`
            : `refused: ${doc.error}`;
        }
        await refresh();
      } finally {
        button.disabled = false;
      }
    });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  localize(document);
  bindActions(document);
  poll();
  setInterval(poll, POLL_MS);
});
