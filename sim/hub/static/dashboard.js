// The hub's dashboard: the state arrives over Server-Sent Events; Chart.js draws the charts.
"use strict";

(function () {
  const COLORS = ["#1c5fa8", "#e07b00", "#0a8a5a", "#b00020", "#6b3fa0", "#00838f", "#8d6e00", "#555555"];
  const OUTCOME_COLORS = { admitted: "#0a8a3d", admitted_provisional: "#f2a900", refer_desk: "#e07b00", refused: "#b00020" };
  const charts = {};
  window.dashboardRendered = {};

  function td(text, cls) {
    const cell = document.createElement("td");
    cell.textContent = text === null || text === undefined ? "" : String(text);
    if (cls) { cell.className = cls; }
    return cell;
  }

  function clock(seconds) {
    return seconds ? new Date(seconds * 1000).toLocaleTimeString("en-GB") : "never";
  }

  function chart(id, config) {
    if (charts[id]) {
      charts[id].data = config.data;
      charts[id].update("none");
    } else {
      config.options = Object.assign({ animation: false, responsive: true, maintainAspectRatio: false }, config.options);
      charts[id] = new Chart(document.getElementById(id), config);
    }
  }

  function render(s) {
    const gates = document.querySelector("#gates tbody");
    gates.replaceChildren(...s.gates.map((g) => {
      const tr = document.createElement("tr");
      tr.dataset.terminal = g.terminal;
      tr.dataset.online = String(g.online);
      const devices = Object.entries(g.devices || {}).filter(([, v]) => v !== "ok" && v !== "card present");
      tr.append(td(g.terminal), td(g.online ? "online" : "offline" + (g.reason ? " (" + g.reason + ")" : ""),
        g.online ? "online" : "offline"), td(clock(g.last_status)),
        td(g.pending, g.pending > 0 ? "backlog" : ""),
        td(!g.online ? "unknown" : devices.length ? devices.map(([k, v]) => k + ": " + v).join("; ") : "ok"));
      return tr;
    }));
    const hours = s.hours.map((h) => new Date(h * 3600 * 1000).toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit" }));
    chart("hourly", { type: "bar", data: { labels: hours, datasets: Object.entries(s.checkins_per_hour).map(([t, counts], i) => (
      { label: t, data: counts, backgroundColor: COLORS[i % COLORS.length] })) },
      options: { scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } } });
    const outcomes = Object.keys(s.outcomes);
    chart("outcomes", { type: "doughnut", data: { labels: outcomes, datasets: [{ data: outcomes.map((o) => s.outcomes[o]),
      backgroundColor: outcomes.map((o) => OUTCOME_COLORS[o] || "#888") }] } });
    const reasons = Object.keys(s.reasons);
    chart("reasons", { type: "bar", data: { labels: reasons, datasets: [{ label: "check-ins", data: reasons.map((r) => s.reasons[r]),
      backgroundColor: "#1c5fa8" }] }, options: { indexAxis: "y", plugins: { legend: { display: false } },
      scales: { x: { beginAtZero: true, ticks: { precision: 0 } } } } });
    const disc = document.querySelector("#discrepancies tbody");
    disc.replaceChildren(...s.discrepancies.map((d) => {
      const tr = document.createElement("tr");
      tr.append(td(clock(d.received)), td(d.terminal), td(d.masked_id, "id"), td(d.category), td(d.fields.join(", ")));
      return tr;
    }));
    document.getElementById("disc-total").textContent = s.discrepancy_total + " in all";
    document.getElementById("updated").textContent = "updated " + clock(s.updated);
    window.dashboardRendered[s.bus_seq] = Date.now();
    document.body.dataset.seq = String(s.bus_seq);
  }

  const source = new EventSource("/events");
  source.onmessage = (ev) => render(JSON.parse(ev.data));
})();
