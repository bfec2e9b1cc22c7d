// The upscaler of the page, in a Web Worker: loads onnxruntime-web (every file checked
// against its pinned integrity hash), opens the exported model, and upscales one image at
// a time with overnet's tile plan and seam blending. Nothing leaves the browser.
import { finishWindow, MIN_OVERLAP, ownedOutputs } from "./overscale.mjs";
import { outputSize, planImage, ramp, TileBlender } from "./tiling.mjs";
import { encodePng, fileLayout, resizePlane, splitSamples, storedPixels } from "./pixels.mjs";
import { decodePng, isPng } from "./png.mjs";

// the largest input and output the page takes (pixels): the output's float32 planes,
// blend weights and PNG rows take about 24 bytes per output pixel of the tab's memory
const MAX_PIXELS = 16e6;
const MAX_OUTPUT_PIXELS = 64e6;

let config = null;
let ort = null;
let session = null;

async function checkedFetch(url, integrity) {
  let response;
  try {
    response = await fetch(url, { integrity, mode: "cors", credentials: "omit" });
  } catch {
    // the browser says only "Failed to fetch" for both causes
    throw new Error(`${url} could not be fetched, or its bytes are not onnxruntime-web ${config.ort.version}'s (integrity ${integrity})`);
  }
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response;
}

/** A module fetched with its integrity hash, imported from a same-origin blob: URL. */
async function moduleUrl(url, integrity) {
  const text = await (await checkedFetch(url, integrity)).text();
  return URL.createObjectURL(new Blob([text], { type: "text/javascript" }));
}

async function webgpuAdapter() {
  if (!self.navigator.gpu) return null;
  try {
    return await self.navigator.gpu.requestAdapter();
  } catch {
    return null;
  }
}

async function load(options) {
  config = await (await fetch("config.json", { cache: "no-cache" })).json();
  const want = options.backend || "auto";
  const adapter = want === "wasm" ? null : await webgpuAdapter();
  if (want === "webgpu" && !adapter) throw new Error("WebGPU was asked for, but this browser has no WebGPU adapter");
  const kind = adapter ? "webgpu" : "wasm";
  const files = config.ort.builds[kind];
  const base = new URL(config.ort.base, self.location.href).href;
  const integrity = config.ort.integrity;
  const entry = await moduleUrl(base + files.entry, integrity[files.entry]);
  const factory = await moduleUrl(base + files.factory, integrity[files.factory]);
  const wasm = await (await checkedFetch(base + files.wasm, integrity[files.wasm])).arrayBuffer();
  ort = await import(entry);
  const isolated = self.crossOriginIsolated === true;
  // Threads need SharedArrayBuffer, which only a cross-origin isolated page has.
  const threads = isolated ? Math.max(1, Math.min(options.threads || self.navigator.hardwareConcurrency || 1, 16)) : 1;
  ort.env.wasm.numThreads = threads;
  ort.env.wasm.proxy = false;
  ort.env.wasm.wasmPaths = { mjs: factory };
  ort.env.wasm.wasmBinary = wasm;
  const model = await (await fetch(config.model)).arrayBuffer();
  // a copy of the bytes for each session opened (a fallback opens a second one)
  const open = (providers) =>
    ort.InferenceSession.create(new Uint8Array(model.slice(0)), { executionProviders: providers, graphOptimizationLevel: "all" });
  // WebGPU with the WASM provider behind it: nodes (or a whole device) WebGPU cannot
  // take run on the CPU instead of failing
  session = await open(kind === "webgpu" ? ["webgpu", "wasm"] : ["wasm"]);
  const gpu = adapter ? adapterName(adapter) : null;
  let backend = kind;
  let fallback = null;
  let difference = await selfCheck();
  if (kind === "webgpu" && difference > config.selfcheck.max_abs) {
    // a provider that computes this graph wrongly on this device is not used
    const why = `WebGPU (${gpu}) differs from the export's self-check by ${difference.toExponential(2)} (max abs; limit ${config.selfcheck.max_abs})`;
    if (want === "webgpu") throw new Error(`${why}: its results would be wrong here; open the page with ?backend=wasm`);
    await session.release?.();
    session = await open(["wasm"]);
    backend = "wasm";
    fallback = `${why}; running on WASM instead`;
    difference = await selfCheck();
  }
  if (difference > config.selfcheck.max_abs) {
    throw new Error(`the model's output differs from the export's self-check by ${difference.toExponential(2)} (max abs): the files are damaged or mismatched; export the site again`);
  }
  return { backend, threads, isolated, ortVersion: config.ort.version, adapter: backend === "webgpu" ? gpu : null, fallback, selfCheck: difference };
}

/** Little-endian float32 values of a base64 string (config.json's self-check). */
function floats(base64) {
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  return new Float32Array(bytes.buffer);
}

/**
 * Run the export's self-check input and return the largest difference from the output
 * onnxruntime gave for it at export time (every stride-th value; Infinity when the
 * output's size differs).
 */
async function selfCheck() {
  const check = config.selfcheck;
  const feeds = { [session.inputNames[0]]: new ort.Tensor("float32", floats(check.input), check.shape) };
  const output = (await session.run(feeds))[session.outputNames[0]];
  const got = output.data;
  output.dispose?.();
  if (got.length !== check.output_size) return Infinity;
  const expected = floats(check.output);
  let worst = 0;
  for (let j = 0; j < expected.length; j += 1) {
    const difference = Math.abs(got[j * check.stride] - expected[j]);
    if (!(difference <= worst)) worst = Number.isNaN(difference) ? Infinity : difference;
  }
  return worst;
}

function adapterName(adapter) {
  const info = adapter.info || {};
  return [info.vendor, info.architecture, info.description].filter(Boolean).join(" ") || "WebGPU adapter";
}

/**
 * The image's samples as overnet reads the file: PNGs decoded here (exact, 16-bit kept);
 * other formats through the browser's decoder and a canvas (8-bit; a canvas stores
 * premultiplied alpha, so the colour of semi-transparent pixels loses precision).
 */
async function decode(file) {
  const bytes = new Uint8Array(await file.arrayBuffer());
  if (isPng(bytes)) {
    try {
      return await decodePng(bytes, MAX_PIXELS);
    } catch (error) {
      throw new Error(`${file.name}: ${error.message}`);
    }
  }
  let bitmap;
  try {
    // no colour management and no EXIF rotation: the pixels as stored, as overnet reads them
    bitmap = await createImageBitmap(new Blob([bytes]), {
      colorSpaceConversion: "none",
      premultiplyAlpha: "none",
      imageOrientation: "none",
    });
  } catch {
    throw new Error(`${file.name}: not an image this browser can decode (PNG, JPEG, WebP, GIF, BMP, AVIF)`);
  }
  const { width, height } = bitmap;
  if (width * height > MAX_PIXELS) {
    bitmap.close();
    throw new Error(`${file.name}: ${width}x${height} is above this page's limit of ${MAX_PIXELS / 1e6} MP`);
  }
  const canvas = new OffscreenCanvas(width, height);
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(bitmap, 0, 0);
  bitmap.close();
  const rgba = context.getImageData(0, 0, width, height).data;
  let layout = fileLayout(bytes);
  if (!layout) {
    let alpha = false;
    for (let i = 3; i < rgba.length && !alpha; i += 4) alpha = rgba[i] !== 255;
    layout = { gray: false, alpha };
  }
  const channels = layout.gray ? (layout.alpha ? 2 : 1) : layout.alpha ? 4 : 3;
  const samples = new Uint8Array(width * height * channels);
  const pick = { 1: [0], 2: [0, 3], 3: [0, 1, 2], 4: [0, 1, 2, 3] }[channels];
  for (let i = 0; i < width * height; i += 1) {
    for (let c = 0; c < channels; c += 1) samples[i * channels + c] = rgba[4 * i + pick[c]];
  }
  return { width, height, channels, max: 255, samples, ...layout };
}

async function runTile(planes, height, width, tile) {
  const [y0, y1, x0, x1] = tile;
  const th = y1 - y0;
  const tw = x1 - x0;
  const input = new Float32Array(3 * th * tw);
  for (let c = 0; c < 3; c += 1) {
    for (let y = 0; y < th; y += 1) {
      const src = c * height * width + (y0 + y) * width + x0;
      input.set(planes.subarray(src, src + tw), (c * th + y) * tw);
    }
  }
  const feeds = { [session.inputNames[0]]: new ort.Tensor("float32", input, [1, 3, th, tw]) };
  const results = await session.run(feeds);
  const output = results[session.outputNames[0]];
  const data = output.data;
  const [, , oh, ow] = output.dims;
  output.dispose?.();
  return { data, oh, ow };
}

/** The overscale head of config.json as float32 arrays (null for an RGB graph). */
function overscaleHead() {
  const h = config.overscale;
  if (!h) return null;
  const arrays = Object.fromEntries(["weight", "bias", "input_shift", "output_shift"].map((k) => [k, Float32Array.from(h[k])]));
  return { upscale: h.upscale, channels: h.channels, ...arrays };
}

/** Tiles run to features and each finishes its owned window, blended (run_overscaled). */
async function finishTiles(id, planes, height, width, plan, scale, head) {
  const outSize = outputSize(height, width, scale);
  const [outH, outW] = outSize;
  const u = head.upscale;
  const finish = (data, tile, rows, cols) =>
    finishWindow(data, (tile[1] - tile[0]) * u, (tile[3] - tile[2]) * u, [tile[0], tile[2]], planes, height, width, head, outSize, rows, cols);
  if (plan.tiles.length === 1) {
    const { data } = await runTile(planes, height, width, plan.tiles[0]);
    self.postMessage({ type: "progress", id, done: 1, total: 1 });
    return finish(data, plan.tiles[0], [0, outH], [0, outW]);
  }
  const spans = (a, b) => [...new Map(plan.tiles.map((t) => [`${t[a]},${t[b]}`, [t[a], t[b]]])).values()].sort((p, q) => p[0] - q[0]);
  const rowsOf = ownedOutputs(height, outH, spans(0, 1));
  const colsOf = ownedOutputs(width, outW, spans(2, 3));
  const total = new Float32Array(3 * outH * outW);
  const weight = new Float32Array(outH * outW);
  let done = 0;
  for (const tile of plan.tiles) {
    const { data } = await runTile(planes, height, width, tile);
    const [y0, y1, yb, ya] = rowsOf.get(`${tile[0]},${tile[1]}`);
    const [x0, x1, xb, xa] = colsOf.get(`${tile[2]},${tile[3]}`);
    const out = finish(data, tile, [y0, y1], [x0, x1]);
    const wy = ramp(y1 - y0, yb, ya);
    const wx = ramp(x1 - x0, xb, xa);
    const h = y1 - y0;
    const w = x1 - x0;
    for (let y = 0; y < h; y += 1) {
      for (let x = 0; x < w; x += 1) {
        const k = Math.fround(wy[y] * wx[x]);
        const at = (y0 + y) * outW + x0 + x;
        weight[at] += k;
        for (let c = 0; c < 3; c += 1) total[c * outH * outW + at] += Math.fround(out[(c * h + y) * w + x] * k);
      }
    }
    done += 1;
    self.postMessage({ type: "progress", id, done, total: plan.tiles.length });
  }
  for (let c = 0; c < 3; c += 1) {
    for (let i = 0; i < outH * outW; i += 1) total[c * outH * outW + i] /= weight[i];
  }
  return total;
}

/** Integer-scale tiles blended as TileBlender does. */
async function blendTiles(id, planes, height, width, plan, scale) {
  const blender = new TileBlender(3, height, width, scale, plan.overlap);
  let done = 0;
  for (const tile of plan.tiles) {
    const { data, oh, ow } = await runTile(planes, height, width, tile);
    if (oh !== (tile[1] - tile[0]) * scale || ow !== (tile[3] - tile[2]) * scale) {
      throw new Error(`the model returned ${oh}x${ow} for a tile, expected x${scale}`);
    }
    blender.add(tile, data, oh, ow);
    done += 1;
    self.postMessage({ type: "progress", id, done, total: plan.tiles.length });
  }
  return blender.result();
}

async function upscale(id, file, options) {
  const started = performance.now();
  const head = overscaleHead();
  const scale = head ? options.scale || config.scale : config.scale;
  if (head && !(scale >= 1 && scale <= head.upscale)) {
    throw new Error(`the scale must be between 1 and ${head.upscale}, got ${scale}`);
  }
  const image = await decode(file);
  const { width, height } = image;
  const [outH0, outW0] = outputSize(height, width, scale);
  if (outH0 * outW0 > MAX_OUTPUT_PIXELS) {
    throw new Error(
      `${file.name}: ${width}x${height} at x${scale} is ${outW0}x${outH0}, above this page's limit of ` +
        `${MAX_OUTPUT_PIXELS / 1e6} MP of output (overnet upscale on the host has none)`,
    );
  }
  const plan = planImage(height, width, {
    scale,
    tile: options.tile,
    overlap: options.overlap,
    maxMemory: options.maxMemory,
    bytesPerPixel: config.plan.bytes_per_input_pixel + (head ? headBytesPerPixel(head, scale) : 0),
    hostIn: config.plan.host_bytes_per_input_pixel,
    hostOut: config.plan.host_bytes_per_output_pixel,
    minAutoTile: config.plan.min_auto_tile,
    minOverlap: head ? MIN_OVERLAP : 0,
  });
  self.postMessage({ type: "plan", id, plan });
  const { rgb: planes, alpha: alphaIn } = splitSamples(image.samples, image.channels, image.max, height, width);
  image.samples = null;
  const rgb = head
    ? await finishTiles(id, planes, height, width, plan, scale, head)
    : await blendTiles(id, planes, height, width, plan, scale);
  const [outH, outW] = outputSize(height, width, scale);
  const alpha = alphaIn ? resizePlane(alphaIn, height, width, outH, outW) : null;
  const { channels, data } = storedPixels(rgb, alpha, outH, outW, image.gray, image.max);
  const png = await encodePng(data, outH, outW, channels);
  const seconds = (performance.now() - started) / 1000;
  return { png, width, height, outW, outH, scale, channels, depth: image.max > 255 ? 16 : 8, plan, seconds };
}

/** Host memory per input pixel of finishing one tile (head_bytes_per_input_pixel). */
function headBytesPerPixel(head, scale) {
  const floats = 2 * head.channels * head.upscale * head.upscale + 4 * scale * scale;
  return Math.trunc(4 * floats) + 1;
}

self.onmessage = async (event) => {
  const message = event.data;
  if (message.type === "init") {
    try {
      self.postMessage({ type: "ready", ...(await load(message.options || {})) });
    } catch (error) {
      self.postMessage({ type: "failed", message: String(error?.message || error) });
    }
    return;
  }
  if (message.type === "upscale") {
    try {
      const result = await upscale(message.id, message.file, message.options);
      self.postMessage({ type: "done", id: message.id, ...result });
    } catch (error) {
      self.postMessage({ type: "error", id: message.id, message: String(error?.message || error) });
    }
  }
};
