// Live view of a partition's records: with "live" ticked, poll the JSON API
// for records past the newest one shown and append them to the table.
(function () {
  const table = document.getElementById("records");
  const live = document.getElementById("live");
  if (!table || !live) return;
  let next = Number(table.dataset.liveFrom);
  const body = table.querySelector("tbody");

  function text(value) {
    if (value === null) return "null";
    return value.text !== null ? value.text : atob(value.base64);
  }

  function cell(className, content) {
    const td = document.createElement("td");
    td.className = className;
    const pre = document.createElement("pre");
    pre.textContent = content;
    td.appendChild(pre);
    return td;
  }

  async function poll() {
    if (!live.checked) return;
    const url = `/api/topics/${encodeURIComponent(table.dataset.topic)}/partitions/${table.dataset.partition}/records?offset=${next}&limit=100`;
    try {
      const response = await fetch(url);
      if (response.ok) {
        const page = await response.json();
        const empty = body.querySelector("tr.empty");
        for (const record of page.records) {
          if (empty) empty.remove();
          const row = document.createElement("tr");
          row.className = "record new";
          row.dataset.offset = record.offset;
          row.appendChild(cell("num offset", String(record.offset)));
          row.appendChild(cell("timestamp", String(record.timestamp)));
          row.appendChild(cell("key", text(record.key)));
          row.appendChild(cell("value", text(record.value)));
          row.appendChild(cell("headers", record.headers.map(h => `${h.key}=${text(h.value)}`).join("\n")));
          body.appendChild(row);
          next = record.offset + 1;
        }
      }
    } catch (error) {
      // the broker may be restarting: try again on the next tick
    }
  }
  setInterval(poll, 1000);
})();
