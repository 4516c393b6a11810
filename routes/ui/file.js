// A file: metadata (from a HEAD request), its raw URL (for curl), download, and a preview chosen by
// type, read by range.
import { useState } from 'preact/hooks';
import { apiPath, getBlob, getToken, handTokenToWorker, head, mediaCanAuthenticate } from './api.js';
import { ErrorBox, html, Link, Loading, pageUrl, useAsync } from './dom.js';
import { bytes } from './format.js';
import { CsvPreview, ParquetPreview } from './table.js';
import { HexPreview, ImagePreview, JsonPreview, MediaPreview, SniffPreview, TextPreview } from './preview.js';

/** Downloads read whole into the page (a token and no service worker) only up to this size. */
const DOWNLOAD_BLOB_MAX = 256 * 1024 * 1024;

const TEXT_EXT = /\.(txt|text|log|md|markdown|html?|css|m?js|ts|xml|ya?ml|toml|ini|cfg|conf|py|rs|go|c|h|cpp|java|sh|jsonl|ndjson|sql|r|tex)$/i;
const BROWSER_IMAGES = /^image\/(png|jpeg|gif|webp|avif|svg\+xml|bmp|vnd\.microsoft\.icon)/;

/** Which preview a file gets, by its Content-Type and name. */
export function previewKind(type, name) {
  const t = type.toLowerCase();
  if (/\.parquet$/i.test(name) || t.startsWith('application/vnd.apache.parquet')) return 'parquet';
  if (/\.(csv|tsv)$/i.test(name) || t.startsWith('text/csv') || t.startsWith('text/tab-separated-values')) return 'csv';
  if (/\.(geo)?json$/i.test(name) || /^application\/(geo\+)?json/.test(t)) return 'json';
  if (BROWSER_IMAGES.test(t)) return 'image';
  if (t.startsWith('video/')) return 'video';
  if (t.startsWith('audio/')) return 'audio';
  if (t.startsWith('text/') || TEXT_EXT.test(name)) return 'text';
  if (t === 'application/octet-stream') return 'sniff';
  return 'binary';
}

function Preview({ kind, url, size, name }) {
  switch (kind) {
    case 'parquet':
      return html`<${ParquetPreview} url=${url} size=${size} />`;
    case 'csv':
      return html`<${CsvPreview} url=${url} size=${size} name=${name} />`;
    case 'json':
      return html`<${JsonPreview} url=${url} size=${size} />`;
    case 'image':
      return html`<${ImagePreview} url=${url} size=${size} name=${name} />`;
    case 'video':
    case 'audio':
      return html`<${MediaPreview} url=${url} size=${size} kind=${kind} name=${name} />`;
    case 'text':
      return html`<${TextPreview} url=${url} size=${size} />`;
    case 'binary':
      return html`<${HexPreview} url=${url} size=${size} />`;
    default:
      return html`<${SniffPreview} url=${url} size=${size} />`;
  }
}

function CopyField({ label, value }) {
  const [copied, setCopied] = useState(false);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(value);
      setCopied(true);
      setTimeout(() => setCopied(false), 1500);
    } catch {
      setCopied(false);
    }
  };
  return html`<div class="copy">
    <label>${label} <input type="text" readonly value=${value} onFocus=${(e) => e.target.select()} /></label>
    <button type="button" onClick=${copy}>${copied ? 'Copied' : 'Copy'}</button>
  </div>`;
}

/** Download: a plain link, the worker lending the token, or (small files) a blob saved from the page. */
function Download({ url, name, size }) {
  const [error, setError] = useState(undefined);
  const href = `${url}?download=1`;
  const needsHelp = getToken() && !mediaCanAuthenticate();
  const onClick = async (e) => {
    if (!getToken()) return;
    if (!needsHelp) return handTokenToWorker();
    e.preventDefault();
    if (size > DOWNLOAD_BLOB_MAX) return setError({ code: 'TOO_LARGE', message: `over ${bytes(DOWNLOAD_BLOB_MAX)}: use the curl command` });
    try {
      const blob = await getBlob(url);
      const a = document.createElement('a');
      a.href = URL.createObjectURL(blob);
      a.download = name;
      a.click();
      setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
    } catch (err) {
      setError(err);
    }
  };
  return html`<a class="button" href=${href} onClick=${onClick}>Download</a><${ErrorBox} error=${error} />`;
}

export function FileView({ name, path, disk }) {
  const url = disk ? apiPath(name, 'disk') : apiPath(name, 'files', path);
  const fileName = disk ? 'disk' : path.split('/').pop();
  const { data: meta, error, loading } = useAsync((signal) => head(url, { signal }), [url]);
  const abs = new URL(url, location.href).href;
  const curl = `curl${getToken() ? " -H 'Authorization: Bearer $TOKEN'" : ''} -r 0-1023 '${abs}'`;
  const kind = meta ? previewKind(meta.type, fileName) : undefined;
  return html`<section>
    <h1 tabindex="-1">${fileName}</h1>
    <p class="muted">in <${Link} href=${pageUrl(name)}>${name}</${Link}>${disk ? ' (a single-file archive)' : ''}</p>
    ${loading ? html`<${Loading} />` : null}
    <${ErrorBox} error=${error} />
    ${meta
      ? html`<div class="file">
          <dl class="facts">
            <div><dt>Size</dt><dd>${bytes(meta.size)} <span class="muted">(${meta.size.toLocaleString('en-US')} bytes)</span></dd></div>
            <div><dt>Type</dt><dd><code>${meta.type}</code></dd></div>
            <div><dt>ETag</dt><dd><code>${meta.etag}</code></dd></div>
            <div><dt>Last-Modified</dt><dd>${meta.lastModified}</dd></div>
          </dl>
          <div class="actions">
            <${CopyField} label="Raw URL" value=${abs} />
            <${CopyField} label="curl" value=${curl} />
            <${Download} url=${url} name=${fileName} size=${meta.size} />
          </div>
          <h2>Preview <span class="muted">${kind}</span></h2>
          <${Preview} kind=${kind} url=${url} size=${meta.size} name=${fileName} />
        </div>`
      : null}
  </section>`;
}
