#!/usr/bin/env node
/**
 * `hexz`'s entry point. It turns on Node's compile cache (V8 code for every module, kept in the
 * system's temporary directory and reused by the next run: start-up is most of a short command)
 * before the command table and anything it loads is compiled, then hands over to ./commands-table.ts.
 */
import module from 'node:module';

// Worker threads (decode and pack workers) read the same cache through the variable.
process.env.NODE_COMPILE_CACHE ??= module.enableCompileCache?.().directory;
await import('./commands-table.js');
