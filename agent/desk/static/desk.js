// The desk: refresh the list of patients sent to the desk every two seconds.
"use strict";

(function () {
  const table = document.getElementById("referrals");
  if (!table) { return; }
  const csrf = table.dataset.csrf;

  function cell(text, cls) {
    const td = document.createElement("td");
    if (cls) { td.className = cls; }
    td.textContent = text || "";
    return td;
  }

  function row(r) {
    const tr = document.createElement("tr");
    tr.dataset.key = r.key;
    tr.append(cell(r.time), cell(r.given_name, "name"), cell(r.masked_id, "id"));
    const reason = cell(r.message_vi);
    const en = document.createElement("span");
    en.className = "en";
    en.textContent = r.message_en;
    reason.append(document.createElement("br"), en);
    const form = document.createElement("form");
    form.method = "post";
    form.action = "/clear";
    for (const [name, value] of [["csrf", csrf], ["key", r.key]]) {
      const input = document.createElement("input");
      input.type = "hidden"; input.name = name; input.value = value;
      form.append(input);
    }
    const button = document.createElement("button");
    button.type = "submit"; button.className = "clear"; button.textContent = "Đã xử lý · Done";
    form.append(button);
    const action = document.createElement("td");
    action.append(form);
    tr.append(reason, action);
    return tr;
  }

  async function refresh() {
    try {
      const answer = await fetch("/referrals.json", { credentials: "same-origin" });
      if (!answer.ok) { return; }
      const list = await answer.json();
      table.tBodies[0].replaceChildren(...list.map(row));
      document.getElementById("none").textContent = list.length ? "" : "Không có ai · Nobody waiting";
    } catch (e) { /* the next round tries again */ }
  }

  setInterval(refresh, 2000);
})();
