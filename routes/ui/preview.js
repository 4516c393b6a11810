// Previews of a file, read by range: never the whole file unless it is small and the preview needs it
// (an image or a clip for a media element that cannot send the token). File bytes only ever reach
// the DOM as text nodes (preact sets textContent), as <img>/<audio>/<video> sources, or as blob URLs
// of images and media: never as HTML or script of the page's origin.
import { useEffect, useRef, useState } from 'preact/hooks';
import { getBlob, getRange, mediaCanAuthenticate } from './api.js';
import { ErrorBox, html, Loading } from './dom.js';
import { bytes } from './format.js';

/** Text read per step: the first 64 KiB, then 64 KiB more per click. */
export const TEXT_STEP = 64 * 1024;
/** Hex lines shown per step (16 bytes a line: 4 KiB). */
const HEX_STEP = 4096;
/** JSON up to this size is read whole and pretty-printed; larger JSON is shown as text. */
const JSON_PRETTY_MAX = 1024 * 1024;
/** Images up to this size load by themselves; larger ones on request. */
export const IMAGE_AUTO_MAX = 16 * 1024 * 1024;
/** Media fetched whole into a blob (only when a token is needed and no service worker can lend it). */
const MEDIA_BLOB_MAX = 64 * 1024 * 1024;

/** True when the bytes look like text: UTF-8 (a cut sequence at the end allowed) and no NUL. */
export function looksLikeText(b) {
  const n = Math.min(b.byteLength, 8192);
  for (let i = 0; i < n; i++) if (b[i] === 0) return false;
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(b, { stream: true });
    return true;
  } catch {
    return false;
  }
}

/** `00000010  68 65 78 7a …  |hexz…|`, one line per 16 bytes from `offset`. */
export function hexLines(b, offset = 0) {
  const lines = [];
  for (let i = 0; i < b.byteLength; i += 16) {
    const row = b.subarray(i, i + 16);
    let hex = '';
    let ascii = '';
    for (let j = 0; j < 16; j++) {
      if (j < row.length) {
        hex += row[j].toString(16).padStart(2, '0') + (j === 7 ? '  ' : ' ');
        ascii += row[j] >= 0x20 && row[j] < 0x7f ? String.fromCharCode(row[j]) : '.';
      } else hex += j === 7 ? '    ' : '   ';
    }
    lines.push(`${(offset + i).toString(16).padStart(8, '0')}  ${hex} |${ascii}|`);
  }
  return lines.join('\n');
}

/** "Shown: 64 KiB of 1 GiB" and a button for more. */
function More({ shown, size, onMore, busy, what = 'more' }) {
  return html`<div class="more-bar">
    <span class="muted">${bytes(shown)} of ${bytes(size)} shown</span>
    ${shown < size ? html`<button type="button" onClick=${onMore} disabled=${busy}>${busy ? 'Reading…' : `Read ${what}`}</button>` : null}
  </div>`;
}

/** Text: the first 64 KiB, decoded as UTF-8 across range boundaries, then more on demand. */
export function TextPreview({ url, size, initial }) {
  const decoder = useRef(new TextDecoder('utf-8'));
  const [text, setText] = useState('');
  const [loaded, setLoaded] = useState(0);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(undefined);

  const take = (b, at) => {
    const end = at + b.byteLength >= size;
    setText((t) => t + decoder.current.decode(b, { stream: !end }));
    setLoaded(at + b.byteLength);
  };
  const more = async (at) => {
    setBusy(true);
    try {
      const { bytes: b } = await getRange(url, at, Math.min(size, at + TEXT_STEP));
      take(b, at);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  useEffect(() => {
    if (initial) take(initial.subarray(0, TEXT_STEP), 0);
    else more(0);
  }, []);
  return html`<div class="preview text">
    <${ErrorBox} error=${error} />
    <pre class="text-body" tabindex="0" aria-label="File text">${text}</pre>
    <${More} shown=${loaded} size=${size} busy=${busy} onMore=${() => more(loaded)} what="64 KiB more" />
  </div>`;
}

/** Hex dump: 4 KiB at a time, read as needed. */
export function HexPreview({ url, size, initial }) {
  const [data, setData] = useState(initial || new Uint8Array(0));
  const [shown, setShown] = useState(0);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(undefined);
  const more = async () => {
    const want = Math.min(size, shown + HEX_STEP);
    if (want > data.byteLength) {
      setBusy(true);
      try {
        const { bytes: b } = await getRange(url, data.byteLength, want);
        const next = new Uint8Array(data.byteLength + b.byteLength);
        next.set(data);
        next.set(b, data.byteLength);
        setData(next);
      } catch (e) {
        setError(e);
        return;
      } finally {
        setBusy(false);
      }
    }
    setShown(want);
  };
  useEffect(() => void more(), []);
  return html`<div class="preview hex">
    <${ErrorBox} error=${error} />
    <pre class="hex-body" tabindex="0" aria-label="Hex dump">${hexLines(data.subarray(0, shown))}</pre>
    <${More} shown=${shown} size=${size} busy=${busy} onMore=${more} what="4 KiB more" />
  </div>`;
}

/** JSON, pretty-printed when it is small enough to read whole; else its first 64 KiB as text. */
export function JsonPreview({ url, size }) {
  const [state, setState] = useState({ loading: true });
  useEffect(() => {
    if (size > JSON_PRETTY_MAX) return setState({ big: true });
    getRange(url, 0, size).then(
      ({ bytes: b }) => {
        const text = new TextDecoder().decode(b);
        try {
          setState({ pretty: JSON.stringify(JSON.parse(text), null, 2) });
        } catch (e) {
          setState({ text, invalid: e.message });
        }
      },
      (error) => setState({ error }),
    );
  }, []);
  if (state.big) return html`<p class="muted">Too large to pretty-print (${bytes(size)}): the first bytes as text.</p><${TextPreview} url=${url} size=${size} />`;
  if (state.loading) return html`<${Loading} />`;
  if (state.error) return html`<${ErrorBox} error=${state.error} />`;
  return html`<div class="preview text">
    ${state.invalid ? html`<p class="warn">Not valid JSON (${state.invalid}): shown as it is.</p>` : null}
    <pre class="text-body" tabindex="0" aria-label="JSON">${state.pretty ?? state.text}</pre>
  </div>`;
}

/**
 * The source for an <img>/<audio>/<video>: the file URL itself when the element can be authenticated
 * (no token, or the service worker adds it: ranges and seeking work as usual), else a blob of the
 * whole file under `max` bytes, else nothing (the view explains).
 */
function useMediaSource(url, size, max, start) {
  const [src, setSrc] = useState({});
  useEffect(() => {
    if (!start) return;
    if (mediaCanAuthenticate()) return setSrc({ src: url });
    if (size > max) return setSrc({ tooBig: true });
    let objectUrl;
    let live = true;
    setSrc({ loading: true });
    getBlob(url).then(
      (b) => {
        objectUrl = URL.createObjectURL(b);
        if (live) setSrc({ src: objectUrl, blob: true });
        else URL.revokeObjectURL(objectUrl);
      },
      (error) => live && setSrc({ error }),
    );
    return () => {
      live = false;
      if (objectUrl) URL.revokeObjectURL(objectUrl);
    };
  }, [url, start]);
  return src;
}

function NoMedia({ size, max }) {
  return html`<p class="warn">This gateway needs a token, which media elements cannot send without a service worker (the page needs https or localhost for one), and at ${bytes(size)} the file is over the ${bytes(max)} this page reads whole. Download it, or read it with curl.</p>`;
}

export function ImagePreview({ url, size, name }) {
  const [start, setStart] = useState(size <= IMAGE_AUTO_MAX);
  const s = useMediaSource(url, size, IMAGE_AUTO_MAX, start);
  const [failed, setFailed] = useState(false);
  if (!start) return html`<p>A large image (${bytes(size)}). <button type="button" onClick=${() => setStart(true)}>Show it</button></p>`;
  if (s.tooBig) return html`<${NoMedia} size=${size} max=${IMAGE_AUTO_MAX} />`;
  if (s.error) return html`<${ErrorBox} error=${s.error} />`;
  if (!s.src) return html`<${Loading} />`;
  if (failed) return html`<p class="warn">The browser cannot show this image format.</p><${HexPreview} url=${url} size=${size} />`;
  return html`<div class="preview image"><img src=${s.src} alt=${`Preview of ${name}`} onError=${() => setFailed(true)} /></div>`;
}

export function MediaPreview({ url, size, kind, name }) {
  const s = useMediaSource(url, size, MEDIA_BLOB_MAX, true);
  if (s.tooBig) return html`<${NoMedia} size=${size} max=${MEDIA_BLOB_MAX} />`;
  if (s.error) return html`<${ErrorBox} error=${s.error} />`;
  if (!s.src) return html`<${Loading} />`;
  const el =
    kind === 'video'
      ? html`<video controls preload="metadata" src=${s.src} aria-label=${`Video ${name}`}></video>`
      : html`<audio controls preload="metadata" src=${s.src} aria-label=${`Audio ${name}`}></audio>`;
  return html`<div class="preview media">${el}${s.blob ? html`<p class="muted">Read whole into the page (the token cannot reach media elements here).</p>` : null}</div>`;
}

/** Unknown type: read the first 64 KiB, then text or hex by what the bytes look like. */
export function SniffPreview({ url, size }) {
  const [state, setState] = useState({ loading: true });
  useEffect(() => {
    getRange(url, 0, Math.min(size, TEXT_STEP)).then(
      ({ bytes: b }) => setState({ bytes: b, text: looksLikeText(b) }),
      (error) => setState({ error }),
    );
  }, []);
  if (state.loading) return html`<${Loading} what="Reading the first bytes" />`;
  if (state.error) return html`<${ErrorBox} error=${state.error} />`;
  return state.text ? html`<${TextPreview} url=${url} size=${size} initial=${state.bytes} />` : html`<${HexPreview} url=${url} size=${size} initial=${state.bytes} />`;
}
