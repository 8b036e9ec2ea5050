// The layer rule of docs/internals/architecture.md, checked by `npm run lint:deps` (part of `npm test`).
// A layer may import its own folder and the layers below it, never one above:
//
//   shared ← store, keys, crypto, clients ← oauth ← metrics, http ← server ← cli
//
// shared/ holds helpers that know nothing of tollgate's parts; the stores, keys, secret hashing
// and the client registry know no protocol; oauth/ knows no web framework; metrics/ and http/
// serve the protocol; server/ wires it all; cli/ is the command. config/ reads tollgate.yaml: it
// imports only shared/, and only the layers that wire things (http, server, cli) import it, so
// the stores, the registry and the config loader never import each other (the stores declare
// the settings they need in store/store-settings.ts).

/** Lowest first; each entry is one layer, a list of folders under src/. */
const LAYERS = [['shared'], ['store', 'keys', 'crypto', 'clients'], ['oauth'], ['metrics', 'http'], ['server'], ['cli']];

const folders = (list) => `^src/(${list.join('|')})/`;

const upward = LAYERS.slice(0, -1).map((layer, i) => ({
  name: `no-upward-from-${layer.join('-')}`,
  comment: `${layer.join(', ')} must not import a higher layer (${LAYERS.slice(i + 1).flat().join(', ')})`,
  severity: 'error',
  from: { path: folders(layer) },
  to: { path: folders(LAYERS.slice(i + 1).flat()) },
}));

module.exports = {
  forbidden: [
    ...upward,
    {
      name: 'config-imports-only-shared',
      comment: 'the config loader knows no store, registry or protocol: they read the config, not the other way',
      severity: 'error',
      from: { path: '^src/config/' },
      to: { path: '^src/', pathNot: folders(['shared', 'config']) },
    },
    {
      name: 'only-wiring-reads-config',
      comment: 'below http, parts take the settings they need as arguments rather than importing the config loader',
      severity: 'error',
      from: { path: folders(['shared', 'store', 'keys', 'crypto', 'clients', 'oauth', 'metrics']) },
      to: { path: '^src/config/' },
    },
    {
      name: 'stores-know-no-siblings',
      comment: 'a store knows no registry, keys or secret hashing: it keeps what it is given',
      severity: 'error',
      from: { path: '^src/store/' },
      to: { path: folders(['keys', 'crypto', 'clients']) },
    },
    {
      name: 'registry-and-keys-know-no-store',
      comment: 'the registry, keys and secret hashing never import a store',
      severity: 'error',
      from: { path: folders(['keys', 'crypto', 'clients']) },
      to: { path: '^src/store/' },
    },
    {
      name: 'constants-import-nothing',
      comment: 'the limits and the RFC syntax checks are imported by every layer and so import nothing',
      severity: 'error',
      from: { path: '^src/shared/(limits|syntax)[.]ts$' },
      to: {},
    },
    {
      name: 'no-circular',
      comment: 'modules that import each other cannot be read (or tested) one at a time',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'src-never-imports-tests',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^(test|bench)/' },
    },
    {
      name: 'not-to-unresolvable',
      comment: 'an import that resolves to no file',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Type-only imports count: a layer that names a higher layer's types depends on it.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.cts', '.js', '.cjs', '.json'] },
  },
};
