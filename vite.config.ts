// Builds the agents' console (src/console/web) into dist/console/web, which src/console serves at `/`.
// dist/console itself holds the compiled server module, so the web build gets a folder of its own.
import { fileURLToPath } from 'node:url';
import preact from '@preact/preset-vite';
import { defineConfig } from 'vite';

export default defineConfig({
  root: fileURLToPath(new URL('./src/console/web/', import.meta.url)),
  base: '/',
  plugins: [preact({ devToolsInProd: false, prefreshEnabled: false })],
  build: {
    outDir: fileURLToPath(new URL('./dist/console/web/', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    chunkSizeWarningLimit: 400,
  },
  server: {
    // `npm run dev:console` next to `ccs start`: the API and the event stream are proxied to the running server.
    proxy: { '/api': process.env['CCS_URL'] ?? 'http://localhost:8080' },
  },
});
