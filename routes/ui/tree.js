// A directory of an archive: one page of the listing at a time (the API's cursor, so a directory of
// millions of entries costs one page per click), sorted and filtered in the page over what is loaded.
import { useEffect, useRef, useState } from 'preact/hooks';
import { apiPath, getJson } from './api.js';
import { ErrorBox, html, Link, Loading, pageUrl } from './dom.js';
import { bytes, count, date } from './format.js';

/** Entries per listing request (the gateway's default maximum is 1000). */
export const TREE_PAGE = 200;

const COLUMNS = [
  { key: 'name', label: 'Name' },
  { key: 'size', label: 'Size', num: true },
  { key: 'mtime', label: 'Modified' },
  { key: 'mode', label: 'Mode' },
];

function compare(key) {
  if (key === 'size') return (a, b) => a.size - b.size;
  if (key === 'mtime') return (a, b) => (a.mtime < b.mtime ? -1 : a.mtime > b.mtime ? 1 : 0);
  if (key === 'mode') return (a, b) => (a.mode < b.mode ? -1 : a.mode > b.mode ? 1 : 0);
  return (a, b) => a.name.localeCompare(b.name, undefined, { numeric: true });
}

function entryHref(name, e) {
  return e.type === 'directory' ? pageUrl(name, 'tree', e.path) : pageUrl(name, 'files', e.path);
}

/** Small line icons drawn as SVG (no icon font, no emoji: they render the same everywhere). */
const ICONS = {
  directory: 'M1.5 3.5h4l1.5 1.5h7.5v8.5h-13z',
  file: 'M3.5 1.5h6l3 3v10h-9zM9.5 1.5v3h3',
  symlink: 'M3.5 1.5h6l3 3v10h-9zM6 11l4-4M7 7h3v3',
  up: 'M8 13V4M4 8l4-4 4 4',
};

export function Icon({ type }) {
  return html`<svg class=${`icon icon-${type}`} viewBox="0 0 16 16" width="16" height="16" aria-hidden="true" focusable="false">
    <path d=${ICONS[type] || ICONS.file} fill=${type === 'directory' ? 'currentColor' : 'none'} fill-opacity="0.18" stroke="currentColor" stroke-width="1.3" stroke-linejoin="round" stroke-linecap="round" />
  </svg>`;
}

/** The listing of `path` in archive `name`, with paging, sort and a name filter. */
export function TreeListing({ name, path }) {
  const [entries, setEntries] = useState([]);
  const [cursor, setCursor] = useState(undefined);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState(undefined);
  const [filter, setFilter] = useState('');
  const [sort, setSort] = useState({ key: 'name', dir: 1, dirsFirst: true });
  const ctl = useRef(null);

  const load = async (from) => {
    const signal = ctl.current.signal;
    setLoading(true);
    try {
      const q = new URLSearchParams({ limit: String(TREE_PAGE) });
      if (from) q.set('cursor', from);
      const page = await getJson(`${apiPath(name, 'tree', path)}?${q}`, { signal });
      if (signal.aborted) return;
      setEntries((xs) => [...xs, ...page.entries]);
      setCursor(page.cursor);
    } catch (e) {
      if (!signal.aborted) setError(e);
    } finally {
      if (!signal.aborted) setLoading(false);
    }
  };

  useEffect(() => {
    ctl.current = new AbortController();
    load();
    return () => ctl.current.abort();
  }, [name, path]);

  const needle = filter.trim().toLowerCase();
  const shown = entries.filter((e) => !needle || e.name.toLowerCase().includes(needle));
  const cmp = compare(sort.key);
  shown.sort((a, b) => (sort.dirsFirst ? (b.type === 'directory') - (a.type === 'directory') : 0) || sort.dir * cmp(a, b));

  const by = (key) => setSort((s) => ({ key, dir: s.key === key ? -s.dir : 1, dirsFirst: key === 'name' }));
  const parent = path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : '';

  return html`<div class="tree">
    <div class="toolbar">
      <label class="filter">Filter names <input type="search" value=${filter} onInput=${(e) => setFilter(e.target.value)} placeholder="part of a name" /></label>
      <span class="muted" aria-live="polite">${needle ? `${count(shown.length)} of ${count(entries.length)} loaded entries match` : `${count(entries.length)} entries${cursor ? ' loaded, more to come' : ''}`}</span>
      <a class="raw" href=${`${apiPath(name, 'files', path)}/`} title="The same directory as an HTML index (wget -r, GDAL /vsicurl/)">HTML index</a>
      <a class="raw" href=${apiPath(name, 'tree', path)}>JSON</a>
    </div>
    <${ErrorBox} error=${error} />
    ${error && !entries.length ? null : html`<table class="list files">
      <thead><tr>
        ${COLUMNS.map(
          (c) => html`<th scope="col" class=${c.num ? 'num' : ''} aria-sort=${sort.key === c.key ? (sort.dir > 0 ? 'ascending' : 'descending') : 'none'}>
            <button type="button" class="sort" onClick=${() => by(c.key)}>${c.label}${sort.key === c.key ? (sort.dir > 0 ? ' ▲' : ' ▼') : ''}</button>
          </th>`,
        )}
      </tr></thead>
      <tbody>
        ${path ? html`<tr><td class="name"><${Link} href=${pageUrl(name, 'tree', parent)}><${Icon} type="up" /> ..<//></td><td></td><td></td><td></td></tr>` : null}
        ${shown.map(
          (e) => html`<tr key=${e.path}>
            <td class="name"><${Link} href=${entryHref(name, e)}><${Icon} type=${e.type} /> ${e.name}${e.type === 'directory' ? '/' : ''}<//>${e.type === 'symlink' ? html` <span class="muted">→ ${e.target}</span>` : null}</td>
            <td class="num">${e.type === 'file' ? bytes(e.size) : ''}</td>
            <td>${date(e.mtime)}</td>
            <td><code>${e.mode}</code></td>
          </tr>`,
        )}
      </tbody>
    </table>`}
    ${!loading && !error && entries.length === 0 ? html`<p class="muted">An empty directory.</p>` : null}
    ${loading ? html`<${Loading} />` : cursor ? html`<button type="button" class="more" onClick=${() => load(cursor)}>Load ${TREE_PAGE} more entries</button>` : null}
  </div>`;
}

export function TreeView({ name, path }) {
  return html`<section>
    <h1 tabindex="-1">${path ? `${path}/` : name}</h1>
    <p class="muted">in <${Link} href=${pageUrl(name)}>${name}</${Link}></p>
    <${TreeListing} name=${name} path=${path} />
  </section>`;
}
