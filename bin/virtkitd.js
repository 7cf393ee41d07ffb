#!/usr/bin/env node
// `virtkitd [options]` is `virtkit daemon [options]` (CommonJS, as bin/package.json says).
'use strict';
import('../dist/src/cli/main.js')
  .then(({ main }) => main(['daemon', ...process.argv.slice(2)]))
  .then((code) => { process.exitCode = code; });
