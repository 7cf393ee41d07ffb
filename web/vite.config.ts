/**
 * The web manager's build (docs/web.md): web/ -> dist/web/. JSX goes through esbuild's own
 * transform for Preact (no Babel). The typed client's browser entry is imported by its package
 * name, as a third-party page would import it.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';

const here = (path: string): string => fileURLToPath(new URL(path, import.meta.url));

/**
 * `node:` modules reached through the API layer's imports of conf/ (schema helpers that also
 * read files in the daemon) are never called by the page; each becomes a module whose every
 * export throws if it ever is. src/client/browser.test.ts is the guard that keeps the browser
 * entry's own imports free of them.
 */
function nodeModulesUnavailable(): Plugin {
  const prefix = '\0node-unavailable:';
  return {
    name: 'virtkit-node-unavailable',
    enforce: 'pre',
    resolveId: (id) => (id.startsWith('node:') ? prefix + id : null),
    load: (id) => (id.startsWith(prefix) ? {
      code: `const fail = () => { throw new Error(${JSON.stringify(`${id.slice(prefix.length)} is not available in a browser`)}); };\n`
        + 'export default new Proxy({}, { get: () => fail });',
      syntheticNamedExports: 'default',
    } : null),
  };
}

export default defineConfig({
  plugins: [nodeModulesUnavailable()],
  root: here('.'),
  base: '/',
  logLevel: 'warn',
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  resolve: { alias: { 'virtkit/client/browser': here('../src/client/browser.ts') } },
  build: {
    outDir: here('../dist/web'),
    emptyOutDir: true,
    // noVNC uses top-level await.
    target: 'es2022',
    // noVNC is its own chunk, loaded when a graphical console opens.
    chunkSizeWarningLimit: 600,
    reportCompressedSize: false,
  },
});
