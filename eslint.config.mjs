// ESLint flat config: type-aware rules that catch real bugs (floating promises, misused
// promises, returning un-awaited promises from try blocks), plus the determinism rules for
// orchestrators (CONVENTIONS.md item 5). Layering is dependency-cruiser's job.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'node_modules/**',
      'coverage/**',
      '.data/**',
      'test/fixtures/**',
      'test/**/fixtures/**',
      'bench/*.js',
      'bench/results/**',
      '**/*.mjs',
      '**/*.cjs',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { project: './tsconfig.json', tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/return-await': ['error', 'in-try-catch'],
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-require-imports': 'off',
      'no-constant-condition': ['error', { checkLoops: false }],
      'no-restricted-syntax': [
        'error',
        {
          selector: "MemberExpression[object.name='process'][property.name='env']",
          message: 'Read settings through loadConfig (src/config.ts).',
        },
      ],
    },
  },
  {
    // Only the config loader, the composition root and the local hosts read the environment.
    files: ['src/config.ts', 'src/composition.ts', 'devhost/**', 'test/**', 'bench/**'],
    rules: { 'no-restricted-syntax': 'off' },
  },
  {
    // Orchestrators replay: no clock, no randomness, no I/O, no environment, no adapters.
    files: ['functions/orchestrations/**/*.ts', 'src/**/*.orchestrator.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['node:*', 'fs', 'path', 'http', 'https', 'crypto', 'os', 'child_process'],
              message: 'Orchestrators do no I/O.',
            },
            {
              group: ['**/adapters/**', '@azure/*', 'openai'],
              message: 'Orchestrators call activities, never adapters or SDKs.',
            },
          ],
        },
      ],
      'no-restricted-globals': [
        'error',
        { name: 'Date', message: 'Use context.df.currentUtcDateTime.' },
        { name: 'setTimeout', message: 'Use context.df.createTimer.' },
        { name: 'setInterval', message: 'Use context.df.createTimer.' },
        { name: 'fetch', message: 'Orchestrators do no I/O.' },
        { name: 'process', message: 'Orchestrators read no environment.' },
      ],
      'no-restricted-properties': [
        'error',
        { object: 'Math', property: 'random', message: 'Not deterministic on replay.' },
        { object: 'crypto', property: 'randomUUID', message: 'Use context.df.newGuid.' },
      ],
    },
  },
);
