import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

export default tseslint.config(
  { ignores: ['**/dist/**', 'node_modules/**', 'bench/results/**', 'scratch/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-console': 'error',
    },
  },
  {
    files: ['test/**', 'bench/**', 'soak/**', 'examples/**', 'demo/server.ts', 'gateway/src/cli.ts', 'gateway/src/cli/**'],
    rules: { 'no-console': 'off' },
  },
  {
    // tool configs in CommonJS (dependency-cruiser)
    files: ['**/*.cjs'],
    languageOptions: { globals: globals.node, sourceType: 'commonjs' },
  },
  {
    // the demo page is plain browser JavaScript
    files: ['demo/page/**/*.js'],
    languageOptions: { globals: globals.browser },
  },
);
