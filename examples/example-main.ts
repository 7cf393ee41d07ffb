/**
 * How an example runs as a command: its one argument is a recorded trace; a refusal (a file
 * that is missing or not a trace) prints the typed error's message, escaped for the terminal
 * since it quotes the file's text, and exits with the code `virtkit` uses for that error.
 */
import { exitCodeFor } from '../src/cli/exit-codes.js';
import { isVirtkitError } from '../src/util/errors.js';
import { escapeForTerminal } from '../src/util/terminal-text.js';

export async function runExampleMain(name: string, analyze: (file: string) => Promise<string>): Promise<void> {
  const file = process.argv[2];
  if (!file || process.argv.length > 3) {
    process.stderr.write(`usage: ${name} TRACE.jsonl\n`);
    process.exit(2);
  }
  try {
    process.stdout.write(`${await analyze(file)}\n`);
  } catch (err) {
    if (!isVirtkitError(err)) throw err;
    process.stderr.write(`${name}: ${escapeForTerminal(err.message)}\n`);
    process.exitCode = exitCodeFor(err.code);
  }
}
