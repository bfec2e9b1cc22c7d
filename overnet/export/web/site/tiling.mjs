// The tile plan and seam blending of overnet's Python Upscaler, line for line
// (overnet/runtime/upscaler.py Upscaler.plan, overnet/imaging/tiling.py), so the page cuts
// an image into the same tiles and blends them with the same float32 weights.

function gcd(a, b) {
  return b ? gcd(b, a % b) : a;
}

/** scale as a fraction [num, den] (scale_fraction: decimals of up to 6 places exact). */
export function scaleFraction(scale) {
  let den = 1;
  while (den < 1e6 && Math.abs(Math.round(scale * den) - scale * den) > 1e-9 * den) den *= 10;
  const num = Math.round(scale * den);
  const g = gcd(num, den);
  return [num / g, den / g];
}

/** Output (H, W) at scale, each side rounded half up in integers (overnet.config.output_size). */
export function outputSize(height, width, scale) {
  const [num, den] = scaleFraction(scale);
  if (den === 1) return [height * num, width * num];
  const side = (n) => Math.floor((2 * num * n + den) / (2 * den));
  return [side(height), side(width)];
}

function isqrt(n) {
  let r = Math.floor(Math.sqrt(n));
  while (r * r > n) r -= 1;
  while ((r + 1) * (r + 1) <= n) r += 1;
  return r;
}

/** Tile origins along one axis: stride tile - overlap, the last tile flush with the edge. */
export function starts(length, tile, overlap) {
  if (length <= tile) return [0];
  const stride = tile - overlap;
  const count = Math.ceil((length - tile) / stride) + 1;
  const out = new Set();
  for (let i = 0; i < count; i += 1) out.add(Math.min(i * stride, length - tile));
  return [...out].sort((a, b) => a - b);
}

/** Tiles [y0, y1, x0, x1] covering height x width, all of one shape (plan_tiles). */
export function planTiles(height, width, tileH, tileW, overlap) {
  const th = Math.min(tileH, height);
  const tw = Math.min(tileW, width);
  const tiles = [];
  for (const y of starts(height, th, overlap)) {
    for (const x of starts(width, tw, overlap)) tiles.push([y, y + th, x, x + tw]);
  }
  return tiles;
}

function balancedSide(length, maxSide, overlap, minAutoTile) {
  if (length <= maxSide || maxSide <= overlap) return maxSide;
  const count = Math.ceil((length - overlap) / (maxSide - overlap));
  const side = Math.ceil((length + (count - 1) * overlap) / count);
  return Math.min(maxSide, Math.max(side, minAutoTile));
}

/**
 * The plan of Upscaler.plan for a height x width image.
 * options: {scale, tile (null: from maxMemory, 0: whole image), overlap, maxMemory (bytes),
 * bytesPerPixel, hostIn, hostOut, minAutoTile} (the last four from the export's config),
 * and for a graph that ends at the overscaled features minOverlap (MIN_OVERLAP; its tiles
 * must be at least 2 * (minOverlap + 1)).
 * Returns {height, width, tileH, tileW, overlap, tiles}; throws when the smallest
 * automatic tile does not fit maxMemory.
 */
export function planImage(height, width, options) {
  const { scale, tile, maxMemory, bytesPerPixel } = options;
  const minOverlap = options.minOverlap || 0;
  if (minOverlap && tile && tile < 2 * (minOverlap + 1)) {
    throw new Error(
      `tile ${tile} is below the smallest tile x${scale} can blend: overscale tiles overlap by at ` +
        `least ${minOverlap} pixels and need pixels of their own; give ${2 * (minOverlap + 1)} or more`,
    );
  }
  const wanted = Math.max(options.overlap, minOverlap);
  const whole = [[0, height, 0, width]];
  if (tile === 0) return { height, width, tileH: height, tileW: width, overlap: 0, tiles: whole };
  const [outH, outW] = outputSize(height, width, scale);
  const host = height * width * options.hostIn + outH * outW * options.hostOut;
  const budgetPixels = Math.floor(Math.max(0, maxMemory - host) / bytesPerPixel);
  if (tile == null && height * width <= budgetPixels) {
    return { height, width, tileH: height, tileW: width, overlap: 0, tiles: whole };
  }
  const side = tile != null ? tile : Math.max(options.minAutoTile, isqrt(budgetPixels));
  let tileH = Math.min(side, height);
  let tileW = Math.min(side, width);
  if (tile == null) {
    tileH = balancedSide(height, tileH, options.overlap, options.minAutoTile);
    tileW = balancedSide(width, tileW, options.overlap, options.minAutoTile);
    if (tileH * tileW > budgetPixels) {
      const need = (tileH * tileW * bytesPerPixel + host) / 1e6;
      throw new Error(
        `${width}x${height} needs about ${need.toFixed(0)} MB, above the memory budget of ` +
          `${(maxMemory / 1e6).toFixed(0)} MB: raise it or give a tile size`,
      );
    }
  }
  const tiled = [];
  if (tileH < height) tiled.push(tileH);
  if (tileW < width) tiled.push(tileW);
  let overlap = 0;
  if (tiled.length) overlap = Math.min(wanted, ...tiled.map((t) => Math.max(0, Math.floor(t / 2) - 1)));
  return { height, width, tileH, tileW, overlap, tiles: planTiles(height, width, tileH, tileW, overlap) };
}

/** 1-D float32 weights rising over `before` samples and falling over `after` (ramp). */
export function ramp(length, before, after) {
  const w = new Float32Array(length).fill(1);
  for (let i = 0; i < before; i += 1) w[i] = Math.fround((i + 0.5) / before);
  for (let i = 0; i < after; i += 1) {
    const down = Math.fround((after - i - 0.5) / after);
    const at = length - after + i;
    w[at] = Math.min(w[at], down);
  }
  return w;
}

/**
 * Accumulates C x (h*s) x (w*s) float32 tile outputs into a C x H' x W' image with the
 * Python TileBlender's weights, in the same float32 operations.
 */
export class TileBlender {
  constructor(channels, height, width, scale, overlap) {
    this.channels = channels;
    this.scale = scale;
    this.overlap = overlap;
    this.height = height;
    this.width = width;
    this.outH = height * scale;
    this.outW = width * scale;
    this.total = new Float32Array(channels * this.outH * this.outW);
    this.weight = new Float32Array(this.outH * this.outW);
  }

  /** output: Float32Array C x th x tw (th, tw: the tile's output size). */
  add(tile, output, th, tw) {
    const [y0, y1, x0, x1] = tile;
    const s = this.scale;
    const ov = this.overlap * s;
    const wy = ramp(th, y0 > 0 ? ov : 0, y1 < this.height ? ov : 0);
    const wx = ramp(tw, x0 > 0 ? ov : 0, x1 < this.width ? ov : 0);
    const plane = this.outH * this.outW;
    for (let y = 0; y < th; y += 1) {
      const row = (y0 * s + y) * this.outW + x0 * s;
      for (let x = 0; x < tw; x += 1) {
        const w = Math.fround(wy[y] * wx[x]);
        this.weight[row + x] += w;
        for (let c = 0; c < this.channels; c += 1) {
          this.total[c * plane + row + x] += Math.fround(output[(c * th + y) * tw + x] * w);
        }
      }
    }
  }

  /** The blended C x H' x W' float32 image (total / weight, in place). */
  result() {
    const plane = this.outH * this.outW;
    for (let c = 0; c < this.channels; c += 1) {
      for (let i = 0; i < plane; i += 1) this.total[c * plane + i] /= this.weight[i];
    }
    return this.total;
  }
}
