#!/usr/bin/env node
// `virtkitd [options]` is `virtkit daemon [options]`.
import { main } from '../dist/src/cli/main.js';

process.exitCode = await main(['daemon', ...process.argv.slice(2)]);
