// The page: picks or takes dropped images, sends each to the worker, shows progress, a
// before/after view and the download. The exported config.json sets the model and the
// tiling defaults; the tiling fields change them for the next images.
const $ = (selector, root = document) => root.querySelector(selector);

const config = await (await fetch("config.json", { cache: "no-cache" })).json();
const params = new URLSearchParams(location.search);
const worker = new Worker("worker.mjs", { type: "module" });
const items = new Map();
const queue = [];
let ready = false;
let busy = false;
let nextId = 1;

$("#scale-label").textContent = config.overscale ? `x1-${config.overscale.upscale}` : `x${config.scale}`;
if (config.overscale) {
  $("#scale").max = config.overscale.upscale;
  $("#scale").value = params.get("scale") || config.scale;
  $("#scale-field").hidden = false;
  $("#scale").addEventListener("input", showSameAs);
}
$("#tile").value = config.tiling.tile ?? "";
$("#overlap").value = config.tiling.overlap;
$("#memory").value = Math.round(config.tiling.max_memory / 1e6);
showSameAs();
for (const field of ["#tile", "#overlap", "#memory"]) $(field).addEventListener("input", showSameAs);

function tilingOptions() {
  const tile = $("#tile").value.trim();
  return {
    scale: config.overscale ? Number($("#scale").value) : config.scale,
    tile: tile === "" ? null : Math.max(0, Math.floor(Number(tile))),
    overlap: Math.max(0, Math.floor(Number($("#overlap").value) || 0)),
    maxMemory: Math.max(1, Number($("#memory").value) || 1) * 1e6,
  };
}

function showSameAs() {
  const { scale, tile, overlap, maxMemory } = tilingOptions();
  const tileFlag = tile === null ? "" : ` --tile ${tile}`;
  const scaleFlag = config.overscale ? ` --scale ${scale}` : "";
  $("#same-as").textContent =
    `Same tiles and pixels as: overnet upscale IMAGE -o OUT --model model.onnx --backend onnxruntime` +
    `${scaleFlag}${tileFlag} --overlap ${overlap} --max-memory ${maxMemory / 1e6}MB`;
}

worker.onmessage = (event) => {
  const m = event.data;
  const status = $("#runtime");
  if (m.type === "ready") {
    ready = true;
    status.dataset.state = "ready";
    Object.assign(status.dataset, { backend: m.backend, threads: m.threads, isolated: m.isolated, selfCheck: m.selfCheck, fallback: m.fallback || "" });
    const threads = m.backend === "wasm" ? `, ${m.threads} thread${m.threads > 1 ? "s" : ""}` : "";
    const why = m.isolated ? "" : " (one thread: the page is not cross-origin isolated)";
    const gpu = m.adapter ? ` on ${m.adapter}` : "";
    const fallback = m.fallback ? ` (${m.fallback})` : "";
    status.textContent = `Ready: onnxruntime-web ${m.ortVersion}, ${m.backend}${gpu}${threads}${m.backend === "wasm" ? why : ""}${fallback}.`;
    pump();
  } else if (m.type === "failed") {
    status.dataset.state = "failed";
    status.textContent = `Could not load the model: ${m.message}`;
  } else if (items.has(m.id)) {
    update(items.get(m.id), m);
  }
};
worker.postMessage({
  type: "init",
  options: { backend: params.get("backend") || "auto", threads: Number(params.get("threads")) || 0 },
});

function add(file) {
  const id = nextId++;
  const node = $("#item").content.firstElementChild.cloneNode(true);
  node.dataset.id = id;
  $(".name", node).textContent = file.name;
  $(".size", node).textContent = `${(file.size / 1024).toFixed(0)} KiB`;
  const item = { id, file, node, urls: [] };
  $(".remove", node).addEventListener("click", () => remove(item));
  $(".slider", node).addEventListener("input", (e) => {
    $(".before-clip", node).style.width = `${e.target.value}%`;
  });
  $("#queue").append(node);
  items.set(id, item);
  queue.push(item);
  pump();
}

function remove(item) {
  items.delete(item.id);
  const at = queue.indexOf(item);
  if (at >= 0) queue.splice(at, 1);
  for (const url of item.urls) URL.revokeObjectURL(url);
  item.node.remove();
}

function pump() {
  if (!ready || busy || !queue.length) return;
  const item = queue.shift();
  busy = true;
  item.node.dataset.state = "running";
  $(".status", item.node).textContent = "Decoding…";
  worker.postMessage({ type: "upscale", id: item.id, file: item.file, options: tilingOptions() });
}

function update(item, m) {
  const node = item.node;
  if (m.type === "plan") {
    node.dataset.plan = JSON.stringify(m.plan);
    const tiles = m.plan.tiles.length;
    $(".status", node).textContent =
      tiles > 1 ? `${tiles} tiles of ${m.plan.tileW}x${m.plan.tileH}, overlap ${m.plan.overlap}…` : "Whole image…";
  } else if (m.type === "progress") {
    $("progress", node).value = m.done / m.total;
  } else if (m.type === "done") {
    const after = URL.createObjectURL(m.png);
    const before = URL.createObjectURL(item.file);
    const plan = URL.createObjectURL(new Blob([JSON.stringify(m.plan)], { type: "application/json" }));
    item.urls.push(after, before, plan);
    const stem = item.file.name.replace(/\.[^.]*$/, "");
    $(".after", node).src = after;
    $(".before", node).src = before;
    // the original is drawn at the upscaled image's displayed size, under the same slider
    new ResizeObserver(() => {
      $(".before", node).style.width = `${$(".after", node).clientWidth}px`;
    }).observe($(".after", node));
    $(".download", node).href = after;
    $(".download", node).download = `${stem}_x${m.scale}.png`;
    $(".plan-link", node).href = plan;
    $(".plan-link", node).download = `${stem}_x${m.scale}.plan.json`;
    $(".compare", node).hidden = false;
    $(".links", node).hidden = false;
    $("progress", node).value = 1;
    $(".status", node).textContent =
      `${m.width}x${m.height} -> ${m.outW}x${m.outH} in ${m.seconds.toFixed(1)} s ` +
      `(${m.plan.tiles.length} tile${m.plan.tiles.length > 1 ? "s" : ""})`;
    node.dataset.seconds = m.seconds.toFixed(3);
    node.dataset.state = "done";
    finish();
  } else if (m.type === "error") {
    node.dataset.state = "error";
    $(".status", node).textContent = m.message;
    finish();
  }
}

function finish() {
  busy = false;
  pump();
}

$("#files").addEventListener("change", (e) => {
  for (const file of e.target.files) add(file);
  e.target.value = "";
});
const drop = $("#drop");
drop.addEventListener("dragover", (e) => {
  e.preventDefault();
  drop.classList.add("over");
});
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  for (const file of e.dataTransfer.files) if (file.type.startsWith("image/") || !file.type) add(file);
});
