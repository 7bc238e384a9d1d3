import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'libs/shared/src/proto/generated/**', 'apps/gateway/public/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', __dirname: 'readonly', require: 'readonly', module: 'writable', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-require-imports': 'off',
      'no-restricted-syntax': ['error', { selector: 'ExportAllDeclaration', message: 'No export * barrels: import from the module that owns the name.' }],
    },
  },
  {
    // Config is read once, validated, and injected: no process.env reads elsewhere.
    files: ['apps/**/*.ts', 'libs/**/*.ts'],
    ignores: ['libs/shared/src/config/**', '**/*.spec.ts', 'apps/devpool/src/submit.ts', 'apps/cli/src/main.ts'],
    rules: { 'no-restricted-properties': ['error', { object: 'process', property: 'env', message: 'Read configuration through libs/shared/src/config.' }] },
  },
);
