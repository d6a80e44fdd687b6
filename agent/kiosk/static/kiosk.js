// The kiosk page: one screen at a time, pushed by the gate over Server-Sent Events.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const body = document.body;
  let countdownEnd = null;
  let lostTimer = null;
  // when each screen was put on the page (Date.now(), ms), by the gate's sequence number: the bench reads it
  window.kioskRendered = {};
  window.kioskPainted = {};  // the next animation frame after it: the screen shows it

  function text(id, value) { $(id).textContent = value || ""; }

  function renderFaults(faults) {
    const list = $("faults");
    list.replaceChildren();
    for (const f of faults || []) {
      const li = document.createElement("li");
      li.dataset.code = f.code;
      li.lang = "vi";
      li.textContent = f.vi + " ";
      const en = document.createElement("span");
      en.className = "en";
      en.lang = "en";
      en.textContent = f.en;
      li.appendChild(en);
      list.appendChild(li);
    }
  }

  function tickCountdown() {
    if (countdownEnd === null) { text("countdown", ""); return; }
    const left = Math.max(0, Math.ceil((countdownEnd - Date.now()) / 1000));
    text("countdown", "Quay lại sau " + left + " giây · Back to start in " + left + " s");
  }

  function render(s) {
    body.className = "tone-" + (s.tone || "neutral");
    body.dataset.kind = s.kind;
    body.dataset.code = s.code;
    body.dataset.picture = s.picture;
    body.dataset.hand = s.hand || "";
    body.dataset.seq = String(s.seq);
    for (const el of document.querySelectorAll(".f")) {
      el.classList.toggle("on", el.id === "f-" + s.finger);
    }
    text("title-vi", s.title_vi);
    text("title-en", s.title_en);
    text("detail-vi", s.detail_vi);
    text("detail-en", s.detail_en);
    text("given-name", s.given_name);
    text("masked-id", s.masked_id);
    $("patient").classList.toggle("empty", !s.given_name && !s.masked_id);
    text("note-vi", s.note_vi);
    text("note-en", s.note_en);
    $("note").classList.toggle("empty", !s.note_vi);
    countdownEnd = s.countdown === null || s.countdown === undefined ? null : Date.now() + s.countdown * 1000;
    tickCountdown();
    renderFaults(s.faults);
    window.kioskRendered[s.seq] = Date.now();
    requestAnimationFrame(() => { window.kioskPainted[s.seq] = Date.now(); });
  }

  function lost() {
    // the gate is not answering: say so instead of showing a stale "please go in"
    render({ kind: "lost", code: "lost", tone: "neutral", picture: "notice", seq: -1,
      title_vi: "Cổng tạm ngưng, xin chờ", title_en: "Gate not ready, please wait",
      faults: [{ code: "lost", vi: "Mất kết nối với máy cổng", en: "No connection to the gate" }] });
    body.classList.add("offline-page");
  }

  function connect() {
    const source = new EventSource("/events");
    source.onmessage = (ev) => {
      if (lostTimer !== null) { clearTimeout(lostTimer); lostTimer = null; }
      render(JSON.parse(ev.data));
    };
    source.onerror = () => {
      if (lostTimer === null) { lostTimer = setTimeout(lost, 3000); }
      if (source.readyState === EventSource.CLOSED) { setTimeout(connect, 2000); }  // refused for good: retry
    };
  }

  setInterval(tickCountdown, 250);
  connect();
})();
