// The page of `overnet serve`: a client of the public API only, by URLs relative to the
// page (the service may sit under a route prefix: /sr/ -> /sr/v1/models).
//   GET  /v1/models                      what is served (models, scales, limits)
//   POST /v1/upscale?scale&format&quality  body = the image file, answer = the result file
// With a token, both carry `Authorization: Bearer <token>`; every refusal is JSON
// {"error": {"status", "kind", "message"}} and the page shows that message as it is.
"use strict";

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = "overnet-serve-token"; // sessionStorage: this tab only
// answer media type -> file extension (the names `overnet upscale` writes)
const EXTENSIONS = {
  "image/png": "png",
  "image/jpeg": "jpg",
  "image/webp": "webp",
  "image/tiff": "tif",
};
const LOSSY = new Set(["jpg", "webp"]);
const ZOOM_MIN = 1 / 64;
const ZOOM_MAX = 64;

const state = {
  token: sessionStorage.getItem(TOKEN_KEY) || "",
  maxScale: null, // the largest scale the service takes (max of the models' upscale)
  file: null,
  inputUrl: null,
  inputSize: null, // [width, height] once the browser decoded the input, else null
  result: null, // {url, name, width, height, shown}
  xhr: null,
  timer: null,
  // view: result pixel (u, v) shows at viewport point (x + u*z, y + v*z)
  view: { z: 1, x: 0, y: 0, split: 0.5, mode: "slider", fitted: true },
};

// ---------------------------------------------------------------- messages

function showError(error) {
  $("error-message").textContent = error.message;
  $("error-detail").textContent = error.detail || "";
  $("error").hidden = false;
}

function clearError() {
  $("error").hidden = true;
}

/** The API's error as {message, detail}: its JSON message as it is, or what came instead. */
async function errorOf(status, statusText, bodyText, retryAfter) {
  let message = null;
  let kind = "";
  try {
    const body = JSON.parse(bodyText);
    if (body && body.error && typeof body.error.message === "string") {
      message = body.error.message;
      kind = body.error.kind || "";
    }
  } catch (_) {
    // not JSON: a proxy or something else in front of the service answered
  }
  if (message === null) {
    const text = (bodyText || "").trim().slice(0, 300);
    message = text || statusText || "the service answered without a message";
  }
  let detail = `HTTP ${status}${kind ? " " + kind : ""}`;
  if (retryAfter) detail += ` · try again in ${retryAfter} s`;
  return { message, detail, status };
}

async function errorOfResponse(response) {
  const text = await response.text().catch(() => "");
  return errorOf(response.status, response.statusText, text, response.headers.get("Retry-After"));
}

function authHeaders() {
  return state.token ? { Authorization: `Bearer ${state.token}` } : {};
}

function formatBytes(n) {
  // decimal units, as the command's options (--max-body 50MB is 50,000,000 bytes)
  if (n < 1000) return `${n} B`;
  if (n < 1e6) return `${(n / 1e3).toFixed(1)} kB`;
  return `${(n / 1e6).toFixed(n < 1e7 ? 2 : 1)} MB`;
}

function formatScale(scale) {
  return String(Number(scale.toFixed(4)));
}

// ---------------------------------------------------------------- the service

async function loadModels() {
  let response;
  try {
    response = await fetch("v1/models", { headers: authHeaders(), cache: "no-store" });
  } catch (exc) {
    $("service").textContent = "the service does not answer";
    showError({ message: `No answer from the service: ${exc.message}`, detail: "" });
    return;
  }
  if (response.status === 401) {
    askToken(await errorOfResponse(response));
    return;
  }
  if (!response.ok) {
    $("service").textContent = "the service refused to describe itself";
    showError(await errorOfResponse(response));
    return;
  }
  const body = await response.json();
  clearError();
  if (state.token) $("token-hint").textContent = "Token accepted.";
  describeService(body);
}

/** Shows what is served. Two shapes of GET /v1/models are read: {"models": [...],
 * "max_scale", "default_scale", "limits"} (several models, each with the scales it takes)
 * and the older {"models": [{"name", "scale", "upscale", "limits", ...}]} of one model. */
function describeService(body) {
  const models = Array.isArray(body.models) ? body.models : [];
  if (models.length === 0) {
    $("service").textContent = "no model is served";
    return;
  }
  // the first of values that is a number (null: not recorded, as an ONNX file's upscale)
  const finite = (...values) =>
    values
      .filter((v) => v !== null && v !== undefined && v !== "")
      .map(Number)
      .find(Number.isFinite);
  // the service takes any scale in (1, the largest upscale of its models]
  const upscales = models
    .map((m) => finite(m.upscale, m.scale_max, m.scale))
    .filter(Number.isFinite);
  state.maxScale = finite(body.max_scale, upscales.length ? Math.max(...upscales) : NaN) ?? null;
  const scale = $("scale");
  if (state.maxScale !== null) scale.max = String(state.maxScale);
  const fallback = finite(body.default_scale, models[0].scale);
  if (fallback !== undefined && !scale.dataset.touched) scale.value = formatScale(fallback);
  const ranges = models
    .filter((m) => finite(m.scale_max) !== undefined)
    .map((m) => {
      const low = formatScale(finite(m.scale_min, 1));
      return `${m.name}: ${low}–${formatScale(finite(m.scale_max))}`;
    });
  $("scale-range").textContent =
    models.length > 1 && ranges.length
      ? ranges.join(", ")
      : state.maxScale !== null
        ? `above 1, up to ${formatScale(state.maxScale)}`
        : "";
  const choices = new Set([fallback, ...models.map((m) => finite(m.scale, m.upscale))]);
  for (let s = 2; state.maxScale !== null && s <= state.maxScale; s += 1) choices.add(s);
  $("scales").replaceChildren(
    ...[...choices]
      .filter(Number.isFinite)
      .sort((a, b) => a - b)
      .map((s) => new Option(formatScale(s), formatScale(s)))
  );
  // several models: the request may name one (else the service picks by scale)
  const select = $("model");
  select.replaceChildren(
    new Option("by scale", ""),
    ...models.map((m) => new Option(m.name, m.name))
  );
  $("model-label").hidden = models.length < 2;
  select.hidden = models.length < 2;

  const m = models[0];
  const names = models.map((x) => x.name).join(", ");
  const parts = [`${names} on ${m.backend || "?"} ${m.device || ""} (${m.precision || "?"})`];
  const limits = body.limits || m.limits || {};
  if (limits.max_pixels) parts.push(`inputs up to ${formatScale(limits.max_pixels / 1e6)} MP`);
  if (limits.max_body_bytes) parts.push(formatBytes(limits.max_body_bytes));
  $("service").textContent = parts.join(" · ");
}

function askToken(error) {
  const form = $("token-form");
  form.hidden = false;
  if (state.token) $("token-hint").textContent = "The service refused this token.";
  $("service").textContent = "this service needs a token";
  showError(error);
  $("token").focus();
}

$("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  state.token = $("token").value.trim();
  sessionStorage.setItem(TOKEN_KEY, state.token);
  loadModels();
});

// ---------------------------------------------------------------- the input

function setFile(file) {
  if (!file) return;
  if (state.xhr) state.xhr.abort();
  clearError();
  clearResult();
  if (state.inputUrl) URL.revokeObjectURL(state.inputUrl);
  state.file = file;
  state.inputUrl = URL.createObjectURL(file);
  state.inputSize = null;
  $("file-info").textContent = `${file.name} · ${formatBytes(file.size)}`;
  const before = $("before");
  before.onload = () => {
    state.inputSize = [before.naturalWidth, before.naturalHeight];
    const size = `${before.naturalWidth}×${before.naturalHeight}`;
    $("file-info").textContent = `${file.name} · ${size} · ${formatBytes(file.size)}`;
    before.hidden = false;
    $("preview-note").hidden = true;
    fit();
  };
  before.onerror = () => {
    before.hidden = true;
    note("This browser cannot show the input (TIFF?); the service can still upscale it.");
    render();
  };
  before.src = state.inputUrl;
  $("go").disabled = false;
  updateQuality();
}

function note(text) {
  $("preview-note").textContent = text;
  $("preview-note").hidden = false;
}

const drop = $("drop");
$("file").addEventListener("change", (event) => setFile(event.target.files[0]));
drop.addEventListener("click", (event) => {
  if (!event.target.closest("label")) $("file").click(); // the label opens the picker itself
});
drop.addEventListener("keydown", (event) => {
  if (event.key === "Enter" || event.key === " ") {
    event.preventDefault();
    $("file").click();
  }
});
// a file dropped anywhere is taken (the browser would otherwise navigate to it)
window.addEventListener("dragover", (event) => {
  event.preventDefault();
  drop.classList.add("over");
});
window.addEventListener("dragleave", (event) => {
  if (event.relatedTarget === null) drop.classList.remove("over");
});
window.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  if (event.dataTransfer.files.length) setFile(event.dataTransfer.files[0]);
});
window.addEventListener("paste", (event) => {
  const file = [...event.clipboardData.files].find((f) => f.type.startsWith("image/"));
  if (file) setFile(file);
});

// ---------------------------------------------------------------- the request

function outputFormat() {
  const chosen = $("format").value;
  if (chosen) return chosen;
  return state.file ? EXTENSIONS[state.file.type] || "" : "";
}

function updateQuality() {
  const lossy = LOSSY.has(outputFormat());
  $("quality-label").hidden = !lossy;
  $("quality-row").hidden = !lossy;
}

$("format").addEventListener("change", updateQuality);
$("quality").addEventListener("input", () => {
  $("quality-value").textContent = $("quality").value;
});
$("scale").addEventListener("input", () => {
  $("scale").dataset.touched = "1";
});

function upscale() {
  if (!state.file || state.xhr) return;
  clearError();
  const scale = Number($("scale").value);
  if (!$("scale").value || !Number.isFinite(scale)) {
    showError({ message: "Enter a scale, for example 2 or 2.5.", detail: "" });
    return;
  }
  const query = new URLSearchParams({ scale: String(scale) });
  if ($("model").value) query.set("model", $("model").value);
  if ($("format").value) query.set("format", $("format").value);
  if (!$("quality-row").hidden) query.set("quality", $("quality").value);

  const xhr = new XMLHttpRequest();
  state.xhr = xhr;
  const started = performance.now();
  xhr.open("POST", `v1/upscale?${query}`);
  xhr.responseType = "blob";
  for (const [name, value] of Object.entries(authHeaders())) xhr.setRequestHeader(name, value);
  xhr.setRequestHeader("Content-Type", state.file.type || "application/octet-stream");
  busy(true);
  progress(0, `Uploading ${formatBytes(state.file.size)}…`);
  xhr.upload.onprogress = (event) => {
    if (event.lengthComputable) {
      const share = event.loaded / event.total;
      progress(share, `Uploading ${Math.round(share * 100)}% of ${formatBytes(event.total)}`);
    }
  };
  xhr.upload.onload = () => {
    // sent: the service decodes, runs the model and encodes; time it while it works
    const tick = () => {
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      progress(null, `Upscaling ×${formatScale(scale)} on the service… ${seconds} s`);
    };
    tick();
    state.timer = setInterval(tick, 100);
  };
  xhr.onprogress = (event) => {
    if (event.lengthComputable && event.total > 0) {
      clearInterval(state.timer);
      const share = event.loaded / event.total;
      progress(share, `Receiving ${Math.round(share * 100)}% of ${formatBytes(event.total)}`);
    }
  };
  xhr.onload = async () => {
    const seconds = (performance.now() - started) / 1000;
    busy(false);
    if (xhr.status === 200) {
      showResult(xhr, scale, seconds);
      return;
    }
    const text = await xhr.response.text().catch(() => "");
    const retryAfter = xhr.getResponseHeader("Retry-After");
    const error = await errorOf(xhr.status, xhr.statusText, text, retryAfter);
    if (xhr.status === 401) askToken(error);
    else showError(error);
  };
  xhr.onerror = () => {
    busy(false);
    showError({
      message: "No answer from the service: it stopped, or the connection was cut.",
      detail: "",
    });
  };
  xhr.onabort = () => {
    busy(false);
    $("progress").hidden = false;
    $("bar").value = 0;
    $("progress-text").textContent = "Cancelled.";
  };
  xhr.send(state.file);
}

function busy(on) {
  $("go").disabled = on || !state.file;
  $("cancel").hidden = !on;
  if (on) {
    $("progress").hidden = false;
  } else {
    clearInterval(state.timer);
    state.xhr = null;
    $("progress").hidden = true;
  }
}

function progress(share, text) {
  const bar = $("bar");
  if (share === null) bar.removeAttribute("value"); // indeterminate: the service works
  else bar.value = share;
  $("progress-text").textContent = text;
}

$("go").addEventListener("click", upscale);
$("cancel").addEventListener("click", () => state.xhr && state.xhr.abort());

// ---------------------------------------------------------------- the result

function clearResult() {
  if (state.result) URL.revokeObjectURL(state.result.url);
  state.result = null;
  for (const id of ["after", "after-side"]) {
    $(id).hidden = true;
    $(id).removeAttribute("src");
  }
  $("download").hidden = true;
  $("divider").hidden = true;
  $("tag-result").hidden = true;
  $("result-info").textContent = "";
  $("preview-note").hidden = true;
}

function showResult(xhr, scale, seconds) {
  clearResult();
  const blob = xhr.response;
  const type = (xhr.getResponseHeader("Content-Type") || blob.type).split(";")[0].trim();
  const extension = EXTENSIONS[type] || "img";
  const stem = state.file.name.replace(/\.[^.]*$/, "") || "image";
  const name = `${stem}_x${formatScale(scale)}.${extension}`;
  const url = URL.createObjectURL(blob);
  const size = (xhr.getResponseHeader("X-OverNet-Size") || "").split("x").map(Number);
  state.result = { url, name, width: size[0] || 0, height: size[1] || 0, shown: false };

  const link = $("download");
  link.href = url;
  link.download = name;
  link.textContent = `Download ${name}`;
  link.hidden = false;

  const served = Number(xhr.getResponseHeader("X-OverNet-Seconds"));
  const model = xhr.getResponseHeader("X-OverNet-Model");
  const parts = [];
  if (state.result.width) parts.push(`${state.result.width}×${state.result.height}`);
  parts.push(`${extension.toUpperCase()} ${formatBytes(blob.size)}`);
  if (Number.isFinite(served)) parts.push(`${served.toFixed(2)} s on the service`);
  parts.push(`${seconds.toFixed(2)} s in all`);
  if (model) parts.push(`model ${model}`);
  $("result-info").textContent = parts.join(" · ");

  const after = $("after");
  after.onload = () => {
    const [shownWidth] = stageSize(); // what the view was showing: the input, most often
    state.result.width = after.naturalWidth;
    state.result.height = after.naturalHeight;
    state.result.shown = true;
    after.hidden = false;
    $("after-side").hidden = false;
    $("tag-result").hidden = false;
    if (state.view.fitted || !shownWidth) {
      fit();
    } else {
      // keep the part of the image in view: the stage grew from the input's size
      state.view.z *= shownWidth / after.naturalWidth;
      render();
    }
  };
  after.onerror = () => {
    note(`This browser cannot show ${extension.toUpperCase()}: download it to see the result.`);
  };
  after.src = url;
  $("after-side").src = url;
}

// ---------------------------------------------------------------- the viewer

const views = $("views");
const viewports = [$("viewport-main"), $("viewport-side")];

/** The stage's size in result pixels: the result's, else the input's. */
function stageSize() {
  if (state.result && state.result.shown) return [state.result.width, state.result.height];
  return state.inputSize || [0, 0];
}

function viewportSize() {
  const box = viewports[0].getBoundingClientRect();
  return [box.width, box.height];
}

function fit() {
  const [w, h] = stageSize();
  const [vw, vh] = viewportSize();
  const view = state.view;
  if (w && h && vw && vh) {
    view.z = Math.min(vw / w, vh / h);
    view.x = (vw - w * view.z) / 2;
    view.y = (vh - h * view.z) / 2;
  }
  view.fitted = true;
  render();
}

function zoomAt(z, cx, cy) {
  const view = state.view;
  z = Math.min(ZOOM_MAX, Math.max(ZOOM_MIN, z));
  view.x = cx - ((cx - view.x) * z) / view.z;
  view.y = cy - ((cy - view.y) * z) / view.z;
  view.z = z;
  view.fitted = false;
  render();
}

function zoomCentered(z) {
  const [vw, vh] = viewportSize();
  zoomAt(z, vw / 2, vh / 2);
}

function render() {
  const [w, h] = stageSize();
  const view = state.view;
  $("empty").hidden = Boolean(w || state.file);
  for (const tag of document.querySelectorAll(".tag:not(#tag-result)")) tag.hidden = !w;
  for (const viewport of viewports) {
    const stage = viewport.querySelector(".stage");
    stage.style.width = `${w}px`;
    stage.style.height = `${h}px`;
    stage.style.transform = `translate(${view.x}px, ${view.y}px) scale(${view.z})`;
  }
  const slider = view.mode === "slider" && state.result && state.result.shown;
  const after = $("after");
  after.style.visibility = view.mode === "side" ? "hidden" : "visible";
  const divider = $("divider");
  divider.hidden = !slider;
  if (slider) {
    const [vw] = viewportSize();
    const at = view.split * vw;
    divider.style.left = `${at}px`;
    divider.setAttribute("aria-valuenow", String(Math.round(view.split * 100)));
    const left = Math.min(w, Math.max(0, (at - view.x) / view.z));
    after.style.clipPath = `inset(0 0 0 ${left}px)`;
  } else {
    after.style.clipPath = "none";
  }
  $("zoom-value").textContent = w ? `${Math.round(view.z * 100)}%` : "–";
}

function setMode(mode) {
  state.view.mode = mode;
  views.classList.toggle("slider", mode === "slider");
  views.classList.toggle("side", mode === "side");
  $("mode-slider").setAttribute("aria-pressed", String(mode === "slider"));
  $("mode-side").setAttribute("aria-pressed", String(mode === "side"));
  if (state.view.fitted) fit();
  else render();
}

$("mode-slider").addEventListener("click", () => setMode("slider"));
$("mode-side").addEventListener("click", () => setMode("side"));
$("zoom-fit").addEventListener("click", fit);
$("zoom-1").addEventListener("click", () => zoomCentered(1));
$("zoom-4").addEventListener("click", () => zoomCentered(4));
$("zoom-in").addEventListener("click", () => zoomCentered(state.view.z * 1.5));
$("zoom-out").addEventListener("click", () => zoomCentered(state.view.z / 1.5));
$("pixelated").addEventListener("change", (event) => {
  views.classList.toggle("pixelated", event.target.checked);
});

for (const viewport of viewports) {
  viewport.addEventListener(
    "wheel",
    (event) => {
      event.preventDefault();
      const box = viewport.getBoundingClientRect();
      const factor = Math.exp(-event.deltaY * (event.deltaMode === 1 ? 0.05 : 0.0015));
      zoomAt(state.view.z * factor, event.clientX - box.left, event.clientY - box.top);
    },
    { passive: false }
  );
  viewport.addEventListener("dblclick", (event) => {
    const box = viewport.getBoundingClientRect();
    zoomAt(state.view.z * 2, event.clientX - box.left, event.clientY - box.top);
  });
  viewport.addEventListener("pointerdown", (event) => {
    if (event.button !== 0 || event.target === $("divider")) return;
    viewport.setPointerCapture(event.pointerId);
    viewport.classList.add("panning");
    let last = [event.clientX, event.clientY];
    const move = (e) => {
      state.view.x += e.clientX - last[0];
      state.view.y += e.clientY - last[1];
      state.view.fitted = false;
      last = [e.clientX, e.clientY];
      render();
    };
    const end = () => {
      viewport.classList.remove("panning");
      viewport.removeEventListener("pointermove", move);
      viewport.removeEventListener("pointerup", end);
      viewport.removeEventListener("pointercancel", end);
    };
    viewport.addEventListener("pointermove", move);
    viewport.addEventListener("pointerup", end);
    viewport.addEventListener("pointercancel", end);
  });
}

const divider = $("divider");
divider.addEventListener("pointerdown", (event) => {
  event.preventDefault();
  divider.setPointerCapture(event.pointerId);
  const move = (e) => {
    const box = viewports[0].getBoundingClientRect();
    state.view.split = Math.min(1, Math.max(0, (e.clientX - box.left) / box.width));
    render();
  };
  const end = () => {
    divider.removeEventListener("pointermove", move);
    divider.removeEventListener("pointerup", end);
    divider.removeEventListener("pointercancel", end);
  };
  move(event);
  divider.addEventListener("pointermove", move);
  divider.addEventListener("pointerup", end);
  divider.addEventListener("pointercancel", end);
});
divider.addEventListener("keydown", (event) => {
  const step = event.shiftKey ? 0.1 : 0.02;
  const moves = { ArrowLeft: -step, ArrowRight: step, Home: -1, End: 1 };
  if (!(event.key in moves)) return;
  event.preventDefault();
  state.view.split = Math.min(1, Math.max(0, state.view.split + moves[event.key]));
  render();
});

// zoom keys, unless typing in a field
window.addEventListener("keydown", (event) => {
  if (event.target.closest("input, select, textarea") || event.ctrlKey || event.metaKey) return;
  const keys = {
    "0": fit,
    "1": () => zoomCentered(1),
    "4": () => zoomCentered(4),
    "+": () => zoomCentered(state.view.z * 1.5),
    "=": () => zoomCentered(state.view.z * 1.5),
    "-": () => zoomCentered(state.view.z / 1.5),
  };
  if (keys[event.key]) keys[event.key]();
});

new ResizeObserver(() => (state.view.fitted ? fit() : render())).observe(views);

if (state.token) $("token").value = state.token;
updateQuality();
render();
loadModels();
