import type { ESLint } from 'eslint';

export declare const LayerImports: Readonly<Record<string, readonly string[]>>;
export declare const ChildProcessAllowed: readonly string[];
declare const plugin: ESLint.Plugin;
export default plugin;
