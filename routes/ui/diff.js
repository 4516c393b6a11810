// Versions: what changed from one archive to another (by default from its base), from GET /v1/diff.
import { getJson } from './api.js';
import { ErrorBox, html, Link, Loading, pageUrl, useAsync } from './dom.js';
import { bytes, count, delta, percent } from './format.js';

function Changes({ title, rows, head, cls }) {
  if (!rows.length) return null;
  return html`<table class=${`list changes ${cls}`}>
    <caption>${title}</caption>
    <thead><tr>${head.map((h) => html`<th scope="col" class=${h.num ? 'num' : ''}>${h.label}</th>`)}</tr></thead>
    <tbody>${rows}</tbody>
  </table>`;
}

export function DiffView({ from, to }) {
  const q = new URLSearchParams(from ? { from, to, limit: '1000' } : { to, limit: '1000' });
  const { data: d, error, loading } = useAsync((signal) => getJson(`/v1/diff?${q}`, { signal }), [from, to]);
  const file = (name, path) => html`<${Link} href=${pageUrl(name, 'files', path)}>${path}<//>`;
  return html`<section>
    <h1 tabindex="-1">Changes${d ? html` from <${Link} href=${pageUrl(d.from)}>${d.from}<//> to <${Link} href=${pageUrl(d.to)}>${d.to}<//>` : to ? ` to ${to}` : ''}</h1>
    ${!to ? html`<p class="warn">Name an archive: <code>/diff?to=NAME</code> (and <code>from=BASE</code>, by default its base).</p>` : null}
    ${loading && to ? html`<${Loading} what="Comparing the indexes" />` : null}
    <${ErrorBox} error=${error} />
    ${d
      ? html`<div class="diff">
          <ul class="summary">
            <li class="added"><strong>${count(d.summary.added)}</strong> added <span class="muted">${bytes(d.summary.addedBytes)}</span></li>
            <li class="removed"><strong>${count(d.summary.removed)}</strong> deleted <span class="muted">${bytes(d.summary.removedBytes)}</span></li>
            <li class="modified"><strong>${count(d.summary.modified)}</strong> modified</li>
            <li class="renamed"><strong>${count(d.summary.renamed)}</strong> renamed</li>
            <li><strong>${count(d.summary.unchanged)}</strong> unchanged</li>
            <li>logical size ${bytes(d.summary.logicalSizeFrom)} → ${bytes(d.summary.logicalSizeTo)} <span class="muted">(${delta(d.summary.logicalSizeTo - d.summary.logicalSizeFrom)})</span></li>
          </ul>
          <p class="muted">
            ${d.chunks.comparable
              ? `Chunks: ${bytes(d.chunks.sharedBytes)} shared, ${bytes(d.chunks.onlyToBytes)} new in ${d.to}, ${bytes(d.chunks.onlyFromBytes)} only in ${d.from}.`
              : `Chunk ids are not comparable (${d.comparison.reason}).`}
            ${d.comparison.method === 'content' ? ' Files of equal size were compared by reading them.' : ' Compared by chunk ids: only the indexes were read.'}
          </p>
          ${d.truncated ? html`<p class="warn">Only the first ${count(1000)} changes of each kind are listed; <code>hexz diff</code> shows them all.</p>` : null}
          <${Changes} title="Added" cls="added" head=${[{ label: 'Path' }, { label: 'Size', num: true }]}
            rows=${d.added.map((e) => html`<tr><td>${e.type === 'file' ? file(d.to, e.path) : `${e.path}${e.type === 'directory' ? '/' : ''}`}</td><td class="num">${e.type === 'file' ? `+${bytes(e.size)}` : e.type}</td></tr>`)} />
          <${Changes} title="Deleted" cls="removed" head=${[{ label: 'Path' }, { label: 'Size', num: true }]}
            rows=${d.removed.map((e) => html`<tr><td>${e.type === 'file' ? file(d.from, e.path) : `${e.path}${e.type === 'directory' ? '/' : ''}`}</td><td class="num">${e.type === 'file' ? `-${bytes(e.size)}` : e.type}</td></tr>`)} />
          <${Changes} title="Modified" cls="modified" head=${[{ label: 'Path' }, { label: 'Before', num: true }, { label: 'After', num: true }, { label: 'Change', num: true }, { label: 'Still shared', num: true }]}
            rows=${d.modified.map(
              (m) => html`<tr><td>${m.typeTo === 'file' ? file(d.to, m.path) : m.path}${m.metadataOnly ? html` <span class="muted">(mode or target only)</span>` : null}</td>
                <td class="num">${bytes(m.sizeFrom)}</td><td class="num">${bytes(m.sizeTo)}</td><td class="num">${delta(m.sizeDelta)}</td>
                <td class="num">${m.typeFrom !== 'file' || m.typeTo !== 'file' ? (m.typeFrom === m.typeTo ? m.typeTo : `${m.typeFrom} → ${m.typeTo}`) : m.sharedBytes === null ? '?' : `${bytes(m.sharedBytes)} (${percent(m.sharedBytes, m.sizeTo)})`}</td></tr>`,
            )} />
          <${Changes} title="Renamed" cls="renamed" head=${[{ label: 'From' }, { label: 'To' }, { label: 'Size', num: true }]}
            rows=${d.renamed.map((r) => html`<tr><td>${file(d.from, r.from)}</td><td>${file(d.to, r.to)}</td><td class="num">${bytes(r.size)}</td></tr>`)} />
          ${d.summary.added + d.summary.removed + d.summary.modified + d.summary.renamed === 0 ? html`<p>No file changed.</p>` : null}
        </div>`
      : null}
  </section>`;
}
