// The page's shell: routes the URL to a view, draws the header with breadcrumbs, asks for a bearer
// token when the gateway wants one, and moves focus to each new view's heading (keyboard and screen
// reader users land where the content starts).
import { render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { getToken, onUnauthorized, setToken, startServiceWorker } from './api.js';
import { ArchiveView } from './archive.js';
import { ArchivesView } from './archives.js';
import { DiffView } from './diff.js';
import { html, Link, onNavigate, pageUrl, parsePageUrl } from './dom.js';
import { FileView } from './file.js';
import { TreeView } from './tree.js';

/** Breadcrumbs of a route: Archives › name › dir › … › file. */
function crumbs(route) {
  const out = [{ label: 'Archives', href: '/' }];
  if (!route.name) return route.view === 'diff' ? [...out, { label: 'Changes' }] : out;
  out.push({ label: route.name, href: pageUrl(route.name) });
  if (route.view === 'tree' || route.view === 'file') {
    out.push({ label: 'files', href: pageUrl(route.name, 'tree') });
    const parts = route.path ? route.path.split('/') : [];
    parts.forEach((p, i) => {
      const path = parts.slice(0, i + 1).join('/');
      const last = i === parts.length - 1;
      out.push({ label: p, href: last && route.view === 'file' ? pageUrl(route.name, 'files', path) : pageUrl(route.name, 'tree', path) });
    });
  }
  return out;
}

function Breadcrumbs({ route }) {
  const list = crumbs(route);
  return html`<nav class="crumbs" aria-label="Breadcrumb"><ol>
    ${list.map((c, i) =>
      html`<li>${i === list.length - 1 ? html`<span aria-current="page">${c.label}</span>` : html`<${Link} href=${c.href}>${c.label}<//>`}</li>`,
    )}
  </ol></nav>`;
}

function TokenForm({ onDone, asked }) {
  const [value, setValue] = useState('');
  const input = useRef(null);
  useEffect(() => input.current && input.current.focus(), []);
  const submit = (e) => {
    e.preventDefault();
    setToken(value.trim());
    if (value.trim()) startServiceWorker();
    onDone(true);
  };
  return html`<form class="token" onSubmit=${submit} aria-label="Bearer token">
    <p>${asked ? 'This gateway needs a bearer token.' : 'Bearer token for this gateway.'} It is kept for this browser tab only (sessionStorage).</p>
    <label>Token <input ref=${input} type="password" autocomplete="off" value=${value} onInput=${(e) => setValue(e.target.value)} /></label>
    <button type="submit">Use token</button>
    <button type="button" onClick=${() => onDone(false)}>Cancel</button>
  </form>`;
}

function View({ route }) {
  switch (route.view) {
    case 'archives':
      return html`<${ArchivesView} />`;
    case 'archive':
      return html`<${ArchiveView} name=${route.name} />`;
    case 'tree':
      return html`<${TreeView} name=${route.name} path=${route.path} />`;
    case 'file':
      return html`<${FileView} name=${route.name} path=${route.path} disk=${route.disk} />`;
    case 'diff':
      return html`<${DiffView} from=${route.from} to=${route.to} />`;
    default:
      return html`<h1 tabindex="-1">Not a page</h1><p>Nothing here. <${Link} href="/">All archives</${Link}></p>`;
  }
}

function App() {
  const [url, setUrl] = useState(location.pathname + location.search);
  const [askToken, setAskToken] = useState(false);
  // Bumped after a token is entered, so every view loads again with it.
  const [epoch, setEpoch] = useState(0);
  const main = useRef(null);
  const first = useRef(true);

  useEffect(() => {
    const sync = () => setUrl(location.pathname + location.search);
    window.addEventListener('popstate', sync);
    const off = onNavigate(sync);
    const offAuth = onUnauthorized(() => setAskToken(true));
    return () => {
      window.removeEventListener('popstate', sync);
      off();
      offAuth();
    };
  }, []);

  const route = parsePageUrl(location);
  useEffect(() => {
    const title = route.name ? `${route.path ? `${route.path.split('/').pop()} · ` : ''}${route.name} · Hexz` : 'Hexz';
    document.title = title;
    if (first.current) {
      first.current = false;
      return;
    }
    // A new view: the focus goes to its start, as after a page load; scroll to the top.
    window.scrollTo(0, 0);
    if (main.current) main.current.focus({ preventScroll: true });
  }, [url]);

  const done = (changed) => {
    setAskToken(false);
    if (changed) setEpoch((n) => n + 1);
  };
  return html`
    <a class="skip" href="#main">Skip to content</a>
    <header class="top">
      <${Link} class="brand" href="/" aria-label="Hexz: all archives"><span class="logo" aria-hidden="true">⬡</span> hexz<//>
      <${Breadcrumbs} route=${route} />
      <button type="button" class="ghost" onClick=${() => setAskToken(true)} aria-label=${getToken() ? 'Change bearer token' : 'Set bearer token'}>
        ${getToken() ? 'Token ✓' : 'Token'}
      </button>
    </header>
    ${askToken ? html`<${TokenForm} onDone=${done} asked=${!getToken()} />` : null}
    <main id="main" ref=${main} tabindex="-1">
      <${View} key=${`${url}#${epoch}`} route=${route} />
    </main>
    <footer class="foot">Hexz gateway · <a href="/v1/archives">JSON API</a> · bytes are read by range, never whole files</footer>
  `;
}

if (getToken()) startServiceWorker();
render(html`<${App} />`, document.getElementById('app'));
