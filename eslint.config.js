// Type-aware linting for every package: promises must be awaited or handled, only Errors thrown.
import js from '@eslint/js'
import tseslint from 'typescript-eslint'

/** What a Node program finds without importing it (the `globals` package is not a dependency). */
const NODE_GLOBALS = Object.fromEntries([
  'process', 'Buffer', 'console', 'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'setImmediate', 'clearImmediate',
  'URL', 'URLSearchParams', 'TextEncoder', 'TextDecoder', 'performance', 'AbortController', 'AbortSignal', 'structuredClone',
  'queueMicrotask', 'EventTarget', 'Event', 'CustomEvent', 'fetch', 'crypto'
].map(name => [name, 'readonly']))

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', 'bench/.work/**', '.tmp/**', '**/*.cjs', '**/*.js', '**/*.mjs', '!bench/**/*.mjs', '!apps/homecloud/bin/*.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname }
    },
    rules: {
      '@typescript-eslint/no-floating-promises': ['error', {
        // node:test's describe/it return promises the runner itself awaits
        allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'suite'] }]
      }],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/only-throw-error': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'error',
      'no-console': 'error'
    }
  },
  {
    // Benchmarks and the launcher are plain JavaScript run by Node: the recommended rules and Node's globals.
    files: ['bench/**/*.mjs', 'apps/homecloud/bin/*.js'],
    languageOptions: { ecmaVersion: 'latest', sourceType: 'module', globals: NODE_GLOBALS },
    rules: {
      'no-empty': ['error', { allowEmptyCatch: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }]
    }
  },
  {
    // The CLI, the demo, tests and benchmarks own the terminal.
    files: ['apps/**/*.ts', '**/test/**/*.ts', 'bench/**/*.ts', 'interop-tests/**/*.ts'],
    rules: { 'no-console': 'off' }
  }
)
