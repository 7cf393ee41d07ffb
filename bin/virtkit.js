#!/usr/bin/env node
import { main } from '../dist/src/cli/main.js';
import { exitQuietlyOnClosedPipe } from '../dist/src/cli/closed-pipe.js';

exitQuietlyOnClosedPipe();
process.exitCode = await main(process.argv.slice(2));
