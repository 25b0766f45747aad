import type { JSX } from 'preact';
import { createContext } from 'preact';
import { useContext, useEffect, useRef, useState } from 'preact/hooks';
import { request, resetMetadataCache, setUnauthorizedHandler } from './api';
import { Field, ErrorNote } from './components/ui';
import { href, useRoute, type Route } from './router';
import { can, getToken, onLiveStatus, setToken, startSharedStream, stopSharedStream, type Hello } from './session';
import { Dashboard } from './pages/dashboard';
import { AlertsPage } from './pages/alerts';
import { AlertPage } from './pages/alert';
import { DevicesPage } from './pages/devices';
import { DevicePage } from './pages/device';
import { RulesPage, RulePage } from './pages/rules';
import { CategoriesPage } from './pages/categories';
import { CasesPage, CasePage } from './pages/cases';
import { WorkflowsPage } from './pages/workflows';
import { SettingsPage } from './pages/settings';
import { TokensPage } from './pages/tokens';
import { WebhooksPage } from './pages/webhooks';

export const SessionContext = createContext<Hello | undefined>(undefined);
export function useSession(): Hello {
  return useContext(SessionContext)!;
}

interface NavItem {
  readonly path: string;
  readonly label: string;
  readonly show: (h: Hello) => boolean;
  readonly admin?: boolean;
}

/** Menus follow the role's privileges (from the `hello` event): what the Web API would refuse is not offered. */
const NAV: readonly NavItem[] = [
  { path: '', label: 'Dashboard', show: (h) => can(h, 'R', 'msdyn_iotalert') },
  { path: 'alerts', label: 'Alerts', show: (h) => can(h, 'R', 'msdyn_iotalert') },
  { path: 'devices', label: 'Devices', show: (h) => can(h, 'R', 'msdyn_iotdevice') },
  { path: 'cases', label: 'Cases', show: (h) => can(h, 'R', 'incident') },
  { path: 'rules', label: 'Rules', show: (h) => can(h, 'R', 'ccs_iotrule') },
  { path: 'categories', label: 'Categories', show: (h) => can(h, 'R', 'msdyn_iotdevicecategory') },
  { path: 'workflows', label: 'Workflows', show: (h) => can(h, 'W', 'workflow'), admin: true },
  { path: 'webhooks', label: 'Webhooks', show: (h) => can(h, 'W', 'ccs_webhook'), admin: true },
  { path: 'settings', label: 'Settings', show: (h) => can(h, 'W', 'msdyn_iotsettings'), admin: true },
  { path: 'tokens', label: 'Tokens', show: (h) => h.role === 'admin', admin: true },
];

export function App(): JSX.Element {
  const [hello, setHello] = useState<Hello | undefined>();
  const [resuming, setResuming] = useState(() => !!getToken());
  const [notice, setNotice] = useState<string | undefined>();

  const signOut = (message?: string) => {
    stopSharedStream();
    setToken(undefined);
    resetMetadataCache();
    setHello(undefined);
    setNotice(message);
  };

  useEffect(() => {
    setUnauthorizedHandler(() => signOut('Your token is no longer valid. Sign in again.'));
    const token = getToken();
    if (!token) return;
    startSharedStream(token, (m) => signOut(m)).then(
      (h) => {
        setHello(h);
        setResuming(false);
      },
      () => {
        setResuming(false);
        signOut();
      },
    );
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  if (resuming) return <p class="loading" role="status">Signing in…</p>;
  if (!hello) {
    return (
      <SignIn
        notice={notice}
        onSignedIn={(h) => {
          setNotice(undefined);
          setHello(h);
        }}
      />
    );
  }
  return (
    <SessionContext.Provider value={hello}>
      <Shell hello={hello} onSignOut={() => signOut('Signed out.')} />
    </SessionContext.Provider>
  );
}

function SignIn(props: { onSignedIn: (h: Hello) => void; notice?: string }): JSX.Element {
  const [token, setTokenText] = useState('');
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    document.title = 'Sign in · ccs';
  }, []);
  const submit = async (e: Event) => {
    e.preventDefault();
    const t = token.trim();
    if (!t) {
      setError('Enter a token.');
      return;
    }
    setBusy(true);
    setError(undefined);
    try {
      // WhoAmI checks the token and gives the Web API's own message when it is refused.
      await request('WhoAmI()', {}, t);
      setToken(t);
      const hello = await startSharedStream(t, () => undefined);
      props.onSignedIn(hello);
    } catch (err) {
      setToken(undefined);
      stopSharedStream();
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="signin" id="main">
      <h1>ccs · Connected Customer Service</h1>
      <p>Sign in to the agent console with an API token.</p>
      {props.notice && <p role="status" class="notice">{props.notice}</p>}
      <form onSubmit={submit} noValidate>
        <Field label="Token" name="token" error={error} help={<>The admin token printed when ccs first started, or one from <code>ccs token create</code>.</>}>
          {(a) => (
            <input {...a} type="password" autocomplete="current-password" value={token} onInput={(e) => setTokenText(e.currentTarget.value)} required />
          )}
        </Field>
        <button type="submit" class="primary" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
      <p class="help">
        Web API: <a href="/api/data/v9.2/">/api/data/v9.2/</a> · <a href="/api/data/v9.2/$metadata">$metadata</a>
      </p>
    </main>
  );
}

function LiveIndicator(): JSX.Element {
  const [live, setLive] = useState(false);
  useEffect(() => onLiveStatus(setLive), []);
  return (
    <span class={`live ${live ? 'on' : 'off'}`} role="status" title={live ? 'Receiving live updates' : 'Live updates paused; reconnecting'}>
      <span aria-hidden="true">●</span> {live ? 'Live' : 'Reconnecting'}
    </span>
  );
}

function Shell(props: { hello: Hello; onSignOut: () => void }): JSX.Element {
  const route = useRoute();
  const main = useRef<HTMLElement>(null);
  const section = route.parts[0] ?? '';
  const [menuOpen, setMenuOpen] = useState(false);
  const items = NAV.filter((n) => n.show(props.hello));
  const firstRender = useRef(true);
  useEffect(() => {
    setMenuOpen(false);
    // Move focus to the new page's content so keyboard and screen-reader users start there.
    if (firstRender.current) firstRender.current = false;
    else main.current?.focus();
  }, [route.parts.join('/')]);
  return (
    <div class="shell">
      <a class="skip" href="#main" onClick={(e) => { e.preventDefault(); main.current?.focus(); }}>
        Skip to content
      </a>
      <header class="topbar">
        <a class="brand" href="#/">
          ccs
        </a>
        <button type="button" class="menu-toggle" aria-expanded={menuOpen} aria-controls="nav" onClick={() => setMenuOpen(!menuOpen)}>
          Menu
        </button>
        <LiveIndicator />
        <span class="who">
          {props.hello.name} <span class="role">({props.hello.role})</span>
        </span>
        <button type="button" onClick={props.onSignOut}>
          Sign out
        </button>
      </header>
      <nav id="nav" class={`sidenav${menuOpen ? ' open' : ''}`} aria-label="Main">
        <ul>
          {items.map((n) => (
            <li key={n.path} class={n.admin ? 'admin' : ''}>
              <a href={href(n.path)} aria-current={section === n.path ? 'page' : undefined}>
                {n.label}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      <main id="main" ref={main} tabIndex={-1}>
        <Page route={route} hello={props.hello} />
      </main>
    </div>
  );
}

function Page(props: { route: Route; hello: Hello }): JSX.Element {
  const [section, id] = props.route.parts;
  const allowed = NAV.find((n) => n.path === (section ?? ''));
  if (allowed && !allowed.show(props.hello)) {
    return <ErrorNote error={`Your role (${props.hello.role}) does not give access to ${allowed.label}.`} />;
  }
  switch (section ?? '') {
    case '':
      return <Dashboard />;
    case 'alerts':
      return id ? <AlertPage id={id} /> : <AlertsPage params={props.route.params} />;
    case 'devices':
      return id ? <DevicePage id={id} /> : <DevicesPage params={props.route.params} />;
    case 'rules':
      return id ? <RulePage id={id} /> : <RulesPage />;
    case 'categories':
      return <CategoriesPage />;
    case 'cases':
      return id ? <CasePage id={id} /> : <CasesPage params={props.route.params} />;
    case 'workflows':
      return <WorkflowsPage />;
    case 'webhooks':
      return <WebhooksPage />;
    case 'settings':
      return <SettingsPage />;
    case 'tokens':
      return <TokensPage />;
    default:
      return <ErrorNote error={`There is no page at #/${props.route.parts.join('/')}.`} />;
  }
}
