// Lint: typescript-eslint's recommended type-aware rules plus the house rules that keep
// layers apart (no child_process under the pure command builder, no floating promises).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import layers from './eslint-rules/layers.js';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'test/fixtures/**', 'test/.cache/**', 'web/vite.config.ts', 'web/build.mjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    ignores: ['web/**'],
    languageOptions: {
      parserOptions: { project: './tsconfig.test.json', tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-control-regex': 'off',
    },
  },
  {
    // The web manager (web/, docs/web.md): browser code with its own tsconfig (DOM, JSX for Preact).
    files: ['web/src/**/*.{ts,tsx}'],
    languageOptions: {
      parserOptions: { project: './web/tsconfig.json', tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // The command line builder is a pure function: no processes, clock, randomness or environment.
    files: ['src/qemu/command/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: ['node:child_process', 'node:fs', 'node:fs/*'] }],
      'no-restricted-properties': ['error',
        { object: 'Math', property: 'random', message: 'argv building must be deterministic' },
        { object: 'process', property: 'env', message: 'argv building must not read the environment' },
        { object: 'Date', property: 'now', message: 'argv building must not read the clock' }],
    },
  },
  {
    // Layer order and faces (docs/contributing.md#layers), and where processes may be started.
    files: ['src/**/*.ts'],
    plugins: { virtkit: layers },
    rules: { 'virtkit/layers': ['error', { srcDir: `${import.meta.dirname}/src`, rootDir: import.meta.dirname }] },
  },
);
