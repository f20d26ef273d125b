/**
 * Layer rules (CONVENTIONS.md item 10), run by `npm run lint`:
 * - src/domain and src/app import no SDK, no node:fs and no adapter;
 * - src/domain imports nothing from app, ports or adapters;
 * - only src/composition.ts imports src/adapters (functions reach adapters through it);
 * - devhost/ is never imported by src/ or functions/.
 */
module.exports = {
  forbidden: [
    {
      name: 'domain-is-pure',
      severity: 'error',
      comment: 'src/domain is pure rules and types: no SDKs, no I/O, no other layer.',
      from: { path: '^src/domain' },
      to: {
        path: [
          '^src/(app|ports|adapters)',
          '^src/composition',
          'node_modules/(@azure|openai)',
          '^(fs|http|https|net|child_process)$',
          '^node:',
        ],
      },
    },
    {
      name: 'app-has-no-adapters-or-sdks',
      severity: 'error',
      comment: 'Use cases talk to ports only.',
      from: { path: '^src/app' },
      to: { path: ['^src/adapters', '^src/composition', 'node_modules/(@azure|openai)', '^fs$', '^node:fs'] },
    },
    {
      name: 'only-composition-imports-adapters',
      severity: 'error',
      comment: 'functions/ and everything else reach adapters only through src/composition.ts.',
      from: { path: '^(functions|src)', pathNot: ['^src/composition\\.ts$', '^src/adapters'] },
      to: { path: '^src/adapters' },
    },
    {
      name: 'devhost-is-never-imported-by-the-app',
      severity: 'error',
      from: { path: '^(src|functions)' },
      to: { path: '^devhost' },
    },
    {
      name: 'no-circular',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    exclude: { path: '^(dist|test|bench)' },
  },
};
