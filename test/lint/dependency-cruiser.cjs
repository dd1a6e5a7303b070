/**
 * Dependency rules checked by `npm run lint` (depcruise): no import cycles, at
 * file level (here) or between folders (folder-cycles.mjs reads depcruise's
 * JSON), and the core (src/) never reaches into the platform adapters — only
 * the CLI, which starts the surfaces, may.
 * @type {import('dependency-cruiser').IConfiguration}
 */
module.exports = {
  forbidden: [
    {
      name: 'no-cycles',
      severity: 'error',
      comment: 'Modules (or folders) import each other in a cycle: move the shared part (types, a protocol, a utility) where both can import it.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'core-not-adapters',
      severity: 'error',
      comment: 'The core (src/) never imports a platform adapter; the CLI (the composition root) starts them.',
      from: { path: '^src/', pathNot: '^src/(cli[.]ts|cli/)' },
      to: { path: '^adapters/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^node_modules/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
