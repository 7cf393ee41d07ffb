/** observability/: trace analyzers (simpletrace-style) over live or recorded QEMU traces (docs/observability.md). */
export { Analyzer, parseRecordLine, readTraceFile, runAnalyzer, type TraceArgs, type TraceRecord, type TraceSource } from './analyzer.js';
