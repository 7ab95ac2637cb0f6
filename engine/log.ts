// Structured JSON logs (pino): one line per event, fields over prose.
import { pino } from 'pino';

export const log = pino({
  level: process.env.SWX_LOG_LEVEL ?? 'info',
  base: { pid: process.pid, node: process.env.SWX_NODE_NAME },
  timestamp: pino.stdTimeFunctions.isoTime,
}, pino.destination(process.env.SWX_LOG_STDERR ? 2 : 1));

export type Logger = typeof log;
