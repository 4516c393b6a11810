// Tables: CSV read 64 KiB at a time (rows cut at the last complete line, the rest carried over), and
// Parquet read by range with hyparquet: the footer first, then only the column chunks of the rows
// shown. Cells are text nodes.
import { useEffect, useRef, useState } from 'preact/hooks';
import { getRange } from './api.js';
import { ErrorBox, html, Loading } from './dom.js';
import { bytes, count } from './format.js';
import { TEXT_STEP } from './preview.js';

/** Parquet rows per step. */
const PARQUET_ROWS = 100;
/** Column-chunk bytes a Parquet step may read without asking (row groups can be hundreds of MiB). */
const PARQUET_AUTO_BYTES = 16 * 1024 * 1024;

/**
 * Parse CSV text (RFC 4180: quotes, doubled quotes, newlines inside quotes, CRLF). Returns complete
 * rows and `rest`, the text after the last complete row (kept for the next read unless `final`).
 */
export function parseCsv(text, delimiter = ',', final = false) {
  const rows = [];
  let row = [];
  let field = '';
  let quoted = false;
  let rowStart = 0;
  let i = 0;
  for (; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else field += c;
    } else if (c === '"' && field === '') quoted = true;
    else if (c === delimiter) {
      row.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      rowStart = i + 1;
    } else field += c;
  }
  if (final && (field !== '' || row.length)) {
    row.push(field);
    rows.push(row);
    rowStart = text.length;
  }
  return { rows, rest: text.slice(rowStart) };
}

/** The delimiter of a CSV by its first line: the most frequent of comma, semicolon, tab. */
export function sniffDelimiter(text, name) {
  if (/\.tsv$/i.test(name)) return '\t';
  const line = text.slice(0, text.search(/\r?\n|$/));
  let best = ',';
  let most = -1;
  for (const d of [',', ';', '\t']) {
    const n = line.split(d).length;
    if (n > most) [best, most] = [d, n];
  }
  return best;
}

function Table({ columns, rows, caption }) {
  return html`<div class="table-wrap" tabindex="0" role="region" aria-label=${caption}>
    <table class="data">
      <caption>${caption}</caption>
      <thead><tr><th scope="col" class="rownum">#</th>${columns.map((c, i) => html`<th scope="col" key=${i}>${c}</th>`)}</tr></thead>
      <tbody>${rows.map((r, i) => html`<tr key=${i}><td class="rownum">${i + 1}</td>${columns.map((_, j) => html`<td key=${j}>${r[j] ?? ''}</td>`)}</tr>`)}</tbody>
    </table>
  </div>`;
}

export function CsvPreview({ url, size, name }) {
  const st = useRef({ decoder: new TextDecoder('utf-8'), rest: '', delimiter: undefined, loaded: 0 });
  const [header, setHeader] = useState(undefined);
  const [rows, setRows] = useState([]);
  const [loaded, setLoaded] = useState(0);
  const [busy, setBusy] = useState(true);
  const [error, setError] = useState(undefined);

  const more = async () => {
    const s = st.current;
    setBusy(true);
    try {
      const at = s.loaded;
      const { bytes: b } = await getRange(url, at, Math.min(size, at + TEXT_STEP));
      s.loaded = at + b.byteLength;
      const final = s.loaded >= size;
      const text = s.rest + s.decoder.decode(b, { stream: !final });
      s.delimiter ??= sniffDelimiter(text, name);
      const parsed = parseCsv(text, s.delimiter, final);
      s.rest = parsed.rest;
      let got = parsed.rows;
      if (!s.header && got.length) {
        s.header = got[0];
        setHeader(got[0]);
        got = got.slice(1);
      }
      setRows((r) => [...r, ...got]);
      setLoaded(s.loaded);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  useEffect(() => void more(), []);
  const columns = header || [];
  return html`<div class="preview table">
    <${ErrorBox} error=${error} />
    ${header ? html`<${Table} columns=${columns} rows=${rows} caption=${`${count(rows.length)} rows from the first ${bytes(loaded)}`} />` : busy ? html`<${Loading} />` : null}
    <div class="more-bar">
      <span class="muted">${bytes(loaded)} of ${bytes(size)} read</span>
      ${loaded < size ? html`<button type="button" onClick=${more} disabled=${busy}>${busy ? 'Reading…' : 'Read more rows'}</button>` : null}
    </div>
  </div>`;
}

/** hyparquet's asyncBuffer over Range requests of the file URL (each slice one request). */
export function rangeBuffer(url, size) {
  return {
    byteLength: size,
    async slice(start, end = size) {
      const { bytes: b } = await getRange(url, start, end);
      // hyparquet wants an ArrayBuffer of exactly these bytes: a copy when the view is a part of a larger one.
      return b.byteOffset === 0 && b.byteLength === b.buffer.byteLength ? b.buffer : b.slice().buffer;
    },
  };
}

/** Decompressors for the codecs a file uses, loaded only when needed (SNAPPY is built into hyparquet). */
async function compressorsFor(codecs) {
  const out = {};
  if (codecs.has('ZSTD')) {
    const { decompress } = await import('fzstd');
    out.ZSTD = (input) => decompress(input);
  }
  if (codecs.has('GZIP')) {
    const { gunzip } = await import('hyparquet-compressors/gzip.js');
    out.GZIP = (input, n) => gunzip(input, new Uint8Array(n));
  }
  if (codecs.has('BROTLI')) out.BROTLI = (await import('hyparquet-compressors/brotli.js')).decompressBrotli;
  if (codecs.has('LZ4') || codecs.has('LZ4_RAW')) {
    const lz4 = await import('hyparquet-compressors/lz4.js');
    out.LZ4 = lz4.decompressLz4;
    out.LZ4_RAW = lz4.decompressLz4Raw;
  }
  return out;
}

/** A cell of a Parquet row as text. */
export function cellText(v) {
  if (v === null || v === undefined) return '';
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Date) return v.toISOString();
  if (v instanceof Uint8Array) return `<${v.byteLength} bytes>`;
  if (typeof v === 'object') return JSON.stringify(v, (_, x) => (typeof x === 'bigint' ? x.toString() : x));
  return String(v);
}

/** Column-chunk bytes the rows [start, end) need: the chunks of every row group they touch. */
function bytesForRows(metadata, start, end) {
  let at = 0;
  let n = 0;
  for (const rg of metadata.row_groups) {
    const rows = Number(rg.num_rows);
    if (at < end && at + rows > start) for (const c of rg.columns) n += Number(c.meta_data?.total_compressed_size ?? 0);
    at += rows;
  }
  return n;
}

export function ParquetPreview({ url, size }) {
  const ctx = useRef(null);
  const [meta, setMeta] = useState(undefined);
  const [rows, setRows] = useState([]);
  const [busy, setBusy] = useState(true);
  const [error, setError] = useState(undefined);
  const [ask, setAsk] = useState(undefined);

  const read = async (force = false) => {
    const c = ctx.current;
    const start = c.next;
    const end = Math.min(c.total, start + PARQUET_ROWS);
    const need = bytesForRows(c.metadata, start, end);
    if (!force && need > PARQUET_AUTO_BYTES) return setAsk(need);
    setAsk(undefined);
    setBusy(true);
    try {
      const got = await c.hp.parquetReadObjects({ file: c.file, metadata: c.metadata, compressors: c.compressors, rowStart: start, rowEnd: end });
      c.next = end;
      setRows((r) => [...r, ...got]);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  useEffect(() => {
    (async () => {
      try {
        const hp = await import('hyparquet');
        // Memoised slices: the footer read is reused for small files, overlapping reads are not repeated.
        const file = hp.cachedAsyncBuffer(rangeBuffer(url, size));
        const metadata = await hp.parquetMetadataAsync(file, { initialFetchSize: Math.min(size, 64 * 1024) });
        const codecs = new Set(metadata.row_groups.flatMap((rg) => rg.columns.map((c) => c.meta_data?.codec)));
        const compressors = await compressorsFor(codecs);
        const columns = hp.parquetSchema(metadata).children.map((ch) => ch.element.name);
        ctx.current = { hp, file, metadata, compressors, next: 0, total: Number(metadata.num_rows) };
        setMeta({ columns, rows: Number(metadata.num_rows), groups: metadata.row_groups.length, codecs: [...codecs].filter(Boolean).join(', ') });
        await read();
      } catch (e) {
        setError(e);
        setBusy(false);
      }
    })();
  }, []);

  return html`<div class="preview table">
    <${ErrorBox} error=${error} />
    ${meta ? html`<p class="muted">Parquet: ${count(meta.rows)} rows in ${count(meta.groups)} row groups, ${meta.columns.length} columns${meta.codecs ? `, ${meta.codecs}` : ''}.</p>` : null}
    ${meta && rows.length ? html`<${Table} columns=${meta.columns} rows=${rows.map((r) => meta.columns.map((c) => cellText(r[c])))} caption=${`Rows 1–${count(rows.length)} of ${count(meta.rows)}`} />` : null}
    ${busy ? html`<${Loading} what="Reading by range" />` : null}
    ${ask !== undefined ? html`<p class="warn">The next rows are in column chunks of ${bytes(ask)}. <button type="button" onClick=${() => read(true)}>Read them</button></p>` : null}
    ${meta && !busy && ask === undefined && rows.length < meta.rows ? html`<button type="button" onClick=${() => read()}>Read ${PARQUET_ROWS} more rows</button>` : null}
  </div>`;
}
