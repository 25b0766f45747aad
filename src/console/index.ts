import type { FastifyInstance } from 'fastify';

/**
 * The start page served at `/`: what this server is, where its APIs are, and a sign-in check with a token. The
 * agents' console (alerts, devices, cases, commands) is built on the same Web API and will be served from here.
 */
const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ccs — Connected Customer Service</title>
<style>
  body { font: 16px/1.5 system-ui, sans-serif; max-width: 48rem; margin: 2rem auto; padding: 0 1rem; color: #1b1b1b; }
  h1 { font-size: 1.6rem; margin-bottom: 0.25rem; }
  code { background: #f1f1f1; padding: 0 0.25rem; border-radius: 3px; }
  label { display: block; font-weight: 600; margin-top: 1rem; }
  input { width: 100%; padding: 0.5rem; font: inherit; border: 1px solid #6b6b6b; border-radius: 4px; }
  button { margin-top: 0.5rem; padding: 0.5rem 1rem; font: inherit; background: #0b5cad; color: #fff; border: 0; border-radius: 4px; cursor: pointer; }
  button:focus-visible, input:focus-visible { outline: 3px solid #f5a623; outline-offset: 2px; }
  #result { margin-top: 1rem; white-space: pre-wrap; }
  table { border-collapse: collapse; width: 100%; margin-top: 1rem; }
  th, td { text-align: left; border-bottom: 1px solid #ddd; padding: 0.35rem; }
</style>
</head>
<body>
<main>
<h1>ccs — Connected Customer Service</h1>
<p>Connects IoT devices to customer service: devices send telemetry, rules turn readings into IoT alerts, alerts
become cases.</p>
<ul>
  <li>Web API (Dataverse-compatible, OData v4): <a href="/api/data/v9.2/"><code>/api/data/v9.2/</code></a> ·
      <a href="/api/data/v9.2/$metadata"><code>$metadata</code></a></li>
  <li>Metrics: <a href="/metrics"><code>/metrics</code></a></li>
  <li>Devices connect over MQTT/TLS and HTTPS as to Azure IoT Hub; get a connection string with
      <code>node bin/ccs.js device connection-string &lt;device id&gt;</code>.</li>
</ul>
<form id="signin">
  <label for="token">Sign in with a token</label>
  <input id="token" name="token" type="password" autocomplete="current-password" required
         aria-describedby="token-help">
  <p id="token-help">The admin token printed when ccs first started, or one from <code>ccs token create</code>.</p>
  <button type="submit">Sign in</button>
</form>
<div id="result" role="status" aria-live="polite"></div>
</main>
<script type="module">
const form = document.getElementById('signin');
const result = document.getElementById('result');
const api = (path, token) => fetch('/api/data/v9.2/' + path, { headers: { Authorization: 'Bearer ' + token, Accept: 'application/json', Prefer: 'odata.include-annotations="*"' } });
form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const token = form.token.value.trim();
  const me = await api('WhoAmI()', token);
  if (!me.ok) { result.textContent = (await me.json()).error.message; return; }
  const { UserId } = await me.json();
  const alerts = await (await api('msdyn_iotalerts?$select=msdyn_description,msdyn_alerttime,msdyn_alerttype,_msdyn_device_value&$filter=statecode eq 0&$orderby=msdyn_alerttime desc&$top=20', token)).json();
  result.textContent = 'Signed in (user ' + UserId + '). Latest active IoT alerts:';
  const table = document.createElement('table');
  table.innerHTML = '<thead><tr><th scope="col">Time</th><th scope="col">Alert</th><th scope="col">Type</th><th scope="col">Device</th></tr></thead>';
  const body = table.createTBody();
  for (const a of alerts.value ?? []) {
    const row = body.insertRow();
    for (const text of [a.msdyn_alerttime, a.msdyn_description, a['msdyn_alerttype@OData.Community.Display.V1.FormattedValue'], a['_msdyn_device_value@OData.Community.Display.V1.FormattedValue']]) {
      row.insertCell().textContent = text ?? '';
    }
  }
  result.after(table);
});
</script>
</body>
</html>`;

export function registerConsoleRoutes(app: FastifyInstance): void {
  app.get('/', async (_req, reply) => reply.header('Content-Type', 'text/html; charset=utf-8').send(PAGE));
}
