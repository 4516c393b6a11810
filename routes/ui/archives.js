// All archives of the gateway: name, size, created, encrypted, base; a page of the listing at a time
// (the listing cursor), each row's details from the archive's info, a few at a time.
import { useEffect, useState } from 'preact/hooks';
import { getJson } from './api.js';
import { diffUrl, ErrorBox, html, Link, Loading, pageUrl } from './dom.js';
import { bytes, date } from './format.js';

/** Archives listed per page. */
const PAGE = 100;
/** Info requests in flight at once (each may open an archive on the gateway). */
const INFO_PARALLEL = 4;

/** Run `fn` over `items` with at most `n` at a time. */
async function eachLimited(items, n, fn) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
}

function Row({ a, info }) {
  const i = info && !(info instanceof Error) ? info : undefined;
  const direct = i ? i.bases.filter((b) => b.direct) : [];
  return html`<tr>
    <td class="name"><${Link} href=${pageUrl(a.name)}>${a.name}<//></td>
    <td class="num">${bytes(a.size)}</td>
    <td class="num">${i ? bytes(i.logicalSize) : ''}</td>
    <td>${i ? date(i.created) : date(a.lastModified)}</td>
    <td>${info instanceof Error ? html`<span class="badge lock" title=${info.message}>${info.code === 'KEY_REQUIRED' ? 'encrypted, no key' : info.code}</span>` : i ? (i.encrypted ? html`<span class="badge lock">encrypted</span>` : 'no') : ''}</td>
    <td>${direct.map((b) => (b.name ? html`<${Link} href=${pageUrl(b.name)}>${b.name}<//> ` : html`<span class="muted">${b.hint}</span> `))}</td>
    <td>${direct.length ? html`<${Link} href=${diffUrl('', a.name)}>changes<//>` : ''}</td>
  </tr>`;
}

export function ArchivesView() {
  const [archives, setArchives] = useState([]);
  const [cursor, setCursor] = useState(undefined);
  const [more, setMore] = useState(true);
  const [error, setError] = useState(undefined);
  const [loading, setLoading] = useState(false);
  const [infos, setInfos] = useState({});

  const load = async (signal, from) => {
    setLoading(true);
    try {
      const q = new URLSearchParams({ limit: String(PAGE) });
      if (from) q.set('cursor', from);
      const page = await getJson(`/v1/archives?${q}`, { signal });
      setArchives((xs) => [...xs, ...page.archives]);
      setCursor(page.cursor);
      setMore(Boolean(page.cursor));
      await eachLimited(page.archives, INFO_PARALLEL, async (a) => {
        let info;
        try {
          info = await getJson(a.url, { signal });
        } catch (e) {
          info = e;
        }
        if (!signal.aborted) setInfos((m) => ({ ...m, [a.name]: info }));
      });
    } catch (e) {
      if (!signal.aborted) setError(e);
    } finally {
      if (!signal.aborted) setLoading(false);
    }
  };

  useEffect(() => {
    const ctl = new AbortController();
    load(ctl.signal);
    return () => ctl.abort();
  }, []);

  return html`<section>
    <h1 tabindex="-1">Archives</h1>
    <${ErrorBox} error=${error} />
    ${archives.length === 0 && !loading && !error ? html`<p class="muted">No archives in the storage root yet: <code>hexz pack DIR archives/NAME.hxz</code>.</p>` : null}
    ${archives.length
      ? html`<table class="list">
          <thead><tr><th scope="col">Name</th><th scope="col" class="num">Archive</th><th scope="col" class="num">Logical</th><th scope="col">Created</th><th scope="col">Encrypted</th><th scope="col">Base</th><th scope="col">Versions</th></tr></thead>
          <tbody>${archives.map((a) => html`<${Row} key=${a.name} a=${a} info=${infos[a.name]} />`)}</tbody>
        </table>`
      : null}
    ${loading ? html`<${Loading} />` : more && archives.length ? html`<button type="button" onClick=${() => load(new AbortController().signal, cursor)}>More archives</button>` : null}
  </section>`;
}
