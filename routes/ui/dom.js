// Rendering and navigation shared by every view: htm bound to preact (no JSX, no build step), page
// URLs that mirror archive paths, and links that move through the History API.
import { h } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import htm from 'htm';

export const html = htm.bind(h);

const enc = (p) => p.split('/').map(encodeURIComponent).join('/');

/**
 * Page URL of an archive, a directory or a file. They mirror the API's (`/v1/archives/NAME/tree/PATH`
 * ↔ `/archives/NAME/tree/PATH`), with the same rule for names that hold slashes: the first `tree` or
 * `files` segment after the name starts the path.
 */
export function pageUrl(name, view, path = '') {
  let out = `/archives/${enc(name)}`;
  if (view) out += `/${view}${view === 'tree' ? '/' : ''}`; // 'disk': the content of a single-file archive
  if (path) out += view === 'tree' ? `${enc(path)}/` : `/${enc(path)}`;
  return out;
}

/** The page URL of a diff between two archives. */
export function diffUrl(from, to) {
  return `/diff?${new URLSearchParams(from ? { from, to } : { to })}`;
}

/** What a page URL shows: `{ view: 'archives' | 'archive' | 'tree' | 'file' | 'diff' | 'missing', … }`. */
export function parsePageUrl(location) {
  const path = location.pathname;
  const q = new URLSearchParams(location.search);
  if (path === '/' || path === '/archives' || path === '/archives/') return { view: 'archives' };
  if (path === '/diff') return { view: 'diff', from: q.get('from') || '', to: q.get('to') || '' };
  if (!path.startsWith('/archives/')) return { view: 'missing' };
  const segs = path.slice('/archives/'.length).split('/');
  const trailing = segs[segs.length - 1] === '';
  if (trailing) segs.pop();
  const dec = (s) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  };
  const i = segs.findIndex((s, k) => k > 0 && (s === 'tree' || s === 'files'));
  if (i < 0 && segs.length > 1 && segs[segs.length - 1] === 'disk') return { view: 'file', name: segs.slice(0, -1).map(dec).join('/'), path: '', disk: true };
  if (i < 0) return { view: 'archive', name: segs.map(dec).join('/') };
  const name = segs.slice(0, i).map(dec).join('/');
  const rest = segs.slice(i + 1).map(dec).join('/');
  return segs[i] === 'tree' ? { view: 'tree', name, path: rest } : { view: 'file', name, path: rest };
}

const navListeners = new Set();

export function onNavigate(fn) {
  navListeners.add(fn);
  return () => navListeners.delete(fn);
}

/** Go to a page URL without reloading (the back button returns, the URL can be shared). */
export function navigate(url, { replace = false } = {}) {
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  for (const fn of navListeners) fn();
}

/** A link between views: a real <a href> (open in a new tab, copy, keyboard) that navigates in place. */
export function Link({ href, children, ...rest }) {
  const onClick = (e) => {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(href);
  };
  return html`<a href=${href} onClick=${onClick} ...${rest}>${children}</a>`;
}

/**
 * `{ data, error, loading }` of an async function, run again when `deps` change; a stale run (deps
 * changed meanwhile, view left) is aborted and its result dropped.
 */
export function useAsync(fn, deps) {
  const [state, setState] = useState({ loading: true });
  useEffect(() => {
    const ctl = new AbortController();
    setState({ loading: true });
    fn(ctl.signal).then(
      (data) => !ctl.signal.aborted && setState({ data }),
      (error) => !ctl.signal.aborted && setState({ error }),
    );
    return () => ctl.abort();
  }, deps);
  return state;
}

/** An API error as the page shows it: the gateway's code and message, nothing more. */
export function ErrorBox({ error }) {
  if (!error) return null;
  const hint =
    error.code === 'KEY_REQUIRED' || error.code === 'WRONG_KEY'
      ? 'The archive is encrypted and the gateway has no key for it: only its name and size can be shown.'
      : error.code === 'UNAUTHORIZED'
        ? 'This gateway needs a bearer token.'
        : '';
  return html`<div class="error" role="alert"><strong>${error.code || 'Error'}</strong> ${error.message}${hint ? html`<p>${hint}</p>` : null}</div>`;
}

export function Loading({ what = 'Loading' }) {
  return html`<p class="muted" aria-live="polite">${what}…</p>`;
}
