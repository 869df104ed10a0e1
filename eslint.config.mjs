// ESLint (flat config): typescript-eslint's recommended rules on the lab extension and the UI
// tests; formatting is prettier's job (eslint-config-prettier turns the style rules off).
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      'labextension/lib/**',
      'jupyter_mlp/**',
      'node_modules/**',
      '.venv/**',
      'ui-tests/node_modules/**',
      'ui-tests/test-results/**',
      'ui-tests/playwright-report/**',
      '**/*.js',
      '**/*.mjs'
    ]
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  prettier,
  {
    files: ['**/*.ts', '**/*.tsx'],
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { args: 'none', varsIgnorePattern: '^_', caughtErrors: 'none' }
      ],
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-non-null-assertion': 'off',
      // JupyterLab's idiom: `namespace CommandIDs { export const ... }`.
      '@typescript-eslint/no-namespace': 'off',
      eqeqeq: ['error', 'smart'],
      'prefer-const': 'error',
      'no-console': ['error', { allow: ['warn', 'error'] }]
    }
  },
  {
    files: ['ui-tests/**/*.ts'],
    // Page globals (window.jupyterapp, recorded figures) are untyped in the tests.
    rules: { 'no-console': 'off', '@typescript-eslint/no-explicit-any': 'off' }
  }
);
