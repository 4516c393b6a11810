// One archive: what `hexz info` says (sizes, ratios, chunking, codecs), its chain of bases, a
// picture of where its bytes are, and its top directory.
import { apiPath, getJson } from './api.js';
import { diffUrl, ErrorBox, html, Link, Loading, pageUrl, useAsync } from './dom.js';
import { bytes, count, date, percent, ratio } from './format.js';
import { TreeListing } from './tree.js';

/**
 * Where the logical bytes of an archive are, from its info: chunks stored here (once each), bytes
 * that repeat a chunk already stored here (dedup inside), bytes held by each base, holes. They add up
 * to the logical size (docs/format.md, section 5: root counts and base entries).
 */
export function byteSegments(info) {
  const unique = info.uniqueRawBytes ?? info.selfLogicalBytes;
  const segs = [
    { key: 'own', label: 'stored here', bytes: unique, cls: 'seg-own' },
    { key: 'dedup', label: 'deduplicated inside', bytes: Math.max(0, info.selfLogicalBytes - unique), cls: 'seg-dedup' },
    ...info.bases.map((b, i) => ({ key: `base${i}`, label: `shared with ${b.name || b.hint}`, bytes: b.logicalBytes, cls: `seg-base seg-base-${i % 4}`, base: b })),
    { key: 'holes', label: 'holes (zeros, not stored)', bytes: info.holeBytes, cls: 'seg-hole' },
  ];
  const rest = info.logicalSize - segs.reduce((n, s) => n + s.bytes, 0);
  if (rest > 0) segs.push({ key: 'rest', label: 'other', bytes: rest, cls: 'seg-rest' });
  return segs;
}

function Bar({ segments, total, label }) {
  return html`<div class="bar" role="img" aria-label=${`${label}: ${segments.filter((s) => s.bytes > 0).map((s) => `${s.label} ${percent(s.bytes, total)}`).join(', ')}`}>
    ${segments.filter((s) => s.bytes > 0).map((s) => html`<span class=${`seg ${s.cls}`} style=${{ width: `${(100 * s.bytes) / Math.max(1, total)}%` }} title=${`${s.label}: ${bytes(s.bytes)}`}></span>`)}
  </div>`;
}

function Legend({ segments, total }) {
  return html`<ul class="legend">
    ${segments.map(
      (s) => html`<li key=${s.key}><span class=${`swatch ${s.cls}`} aria-hidden="true"></span>
        ${s.base && s.base.name ? html`shared with <${Link} href=${pageUrl(s.base.name)}>${s.base.name}<//>` : s.label}
        <span class="num">${bytes(s.bytes)}</span> <span class="muted">${percent(s.bytes, total)}</span></li>`,
    )}
  </ul>`;
}

/** The picture: logical bytes by where they live, and the archive object by what it holds. */
export function BytesPicture({ info }) {
  const segs = byteSegments(info);
  const unique = info.uniqueRawBytes ?? info.selfLogicalBytes;
  const overhead = Math.max(0, info.archiveSize - info.storedChunkBytes);
  const object = [
    { key: 'chunks', label: 'compressed chunks', bytes: info.storedChunkBytes, cls: 'seg-own' },
    { key: 'index', label: 'index, header, trailer', bytes: overhead, cls: 'seg-index' },
  ];
  return html`<figure class="picture">
    <figcaption>Where the ${bytes(info.logicalSize)} of files are</figcaption>
    <${Bar} segments=${segs} total=${info.logicalSize} label="Logical bytes" />
    <${Legend} segments=${segs} total=${info.logicalSize} />
    <figcaption>The archive object, ${bytes(info.archiveSize)}: ${bytes(unique)} of unique data compressed to ${bytes(info.storedChunkBytes)} (${ratio(info.ratios && info.ratios.compression)})</figcaption>
    <${Bar} segments=${object} total=${info.archiveSize} label="Archive object" />
    <${Legend} segments=${object} total=${info.archiveSize} />
  </figure>`;
}

function Facts({ info }) {
  const c = info.chunking || {};
  const rows = [
    ['Created', `${date(info.created)}${info.creator ? ` by ${info.creator}` : ''}`],
    ['Source', `${info.source?.name || '–'} (${info.source?.type || 'directory'})`],
    ['Entries', count(info.fileCount)],
    ['Logical size', bytes(info.logicalSize)],
    ['Archive size', bytes(info.archiveSize)],
    ['Ratios', `dedup ${ratio(info.ratios?.dedup)} · compression ${ratio(info.ratios?.compression)} · logical / archive ${ratio(info.ratios?.logicalToArchive)}`],
    ['Chunking', `content-defined, min ${bytes(c.min)} · avg ${bytes(c.avg)} · max ${bytes(c.max)}${c.normalization !== undefined ? ` · normalization ${c.normalization}` : ''}`],
    ['Chunks', `${count(info.chunkRefs)} references, ${count(info.storedChunks)} stored here (${bytes(info.storedChunkBytes)})`],
    ['Compression', `${info.compression?.codec || '–'}${info.compression?.level !== undefined ? ` level ${info.compression.level}` : ''}`],
    ['Encryption', info.encrypted ? `yes (${info.keyDerivation})` : 'no'],
    ['UUID', info.uuid],
    ['Format', `hxz v${info.formatVersion}`],
  ];
  return html`<dl class="facts">${rows.map(([k, v]) => html`<div key=${k}><dt>${k}</dt><dd>${v}</dd></div>`)}</dl>`;
}

function Codecs({ codecs }) {
  const list = Object.entries(codecs || {});
  if (!list.length) return null;
  return html`<table class="list compact"><caption>Chunks by codec</caption>
    <thead><tr><th scope="col">Codec</th><th scope="col" class="num">Chunks</th><th scope="col" class="num">Raw</th><th scope="col" class="num">Stored</th><th scope="col" class="num">Ratio</th></tr></thead>
    <tbody>${list.map(([k, s]) => html`<tr key=${k}><td>${k}</td><td class="num">${count(s.chunks)}</td><td class="num">${bytes(s.rawBytes)}</td><td class="num">${bytes(s.storedBytes)}</td><td class="num">${ratio(s.rawBytes / Math.max(1, s.storedBytes))}</td></tr>`)}</tbody>
  </table>`;
}

function Chain({ name, info }) {
  if (!info.bases.length) return html`<p class="muted">A full archive: no bases, every chunk is stored here.</p>`;
  return html`<ol class="chain">
    <li><strong>${name}</strong> <span class="muted">this archive · ${bytes(info.selfLogicalBytes)} of its own</span></li>
    ${info.bases.map(
      (b) => html`<li key=${b.uuid}>
        ${b.name ? html`<${Link} href=${pageUrl(b.name)}>${b.name}<//>` : html`<code>${b.hint}</code>`}${' '}
        <span class="muted">${b.direct ? 'direct base' : 'base of a base'} · holds ${bytes(b.logicalBytes)} of this archive${b.archiveSize !== undefined ? ` · archive ${bytes(b.archiveSize)}` : ''}</span>
        ${b.direct && b.name ? html` · <${Link} href=${diffUrl(b.name, name)}>what changed<//>` : null}
      </li>`,
    )}
  </ol>`;
}

export function ArchiveView({ name }) {
  const { data: info, error, loading } = useAsync((signal) => getJson(apiPath(name), { signal }), [name]);
  return html`<section>
    <h1 tabindex="-1">${name}</h1>
    ${loading ? html`<${Loading} />` : null}
    <${ErrorBox} error=${error} />
    ${info
      ? html`<div class="archive">
          <div class="cards">
            <div class="card"><h2>About</h2><${Facts} info=${info} /><${Codecs} codecs=${info.codecs} /></div>
            <div class="card"><h2>Bytes</h2><${BytesPicture} info=${info} /><h2>Chain of bases</h2><${Chain} name=${name} info=${info} /></div>
          </div>
          ${info.source?.type === 'file'
            ? html`<p>A single-file archive: <${Link} href=${pageUrl(name, 'disk')}>preview its content<//> · raw <a href=${apiPath(name, 'disk')}>${apiPath(name, 'disk')}</a></p>`
            : html`<h2>Files</h2><${TreeListing} name=${name} path="" />`}
        </div>`
      : null}
  </section>`;
}
