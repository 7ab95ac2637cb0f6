// The analysts' shared dashboard: saved panels (a title, one SELECT and how to chart it) in a NATS KV bucket with
// history, so every hub process serves the same panels and each change can be traced.
import { z } from 'zod';
import type { Bus } from '../engine/nats/jetstream.ts';
import { SharedEntries } from '../engine/nats/shared-entries.ts';

export const sql = z.string().min(1).max(20_000).describe('one SELECT over the statistics tables');

export const panelId = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, 'panel ids are 1-64 lower-case letters, digits, - and _');
export const panelSchema = z.object({
  title: z.string().min(1).max(200),
  sql,
  chart: z.enum(['table', 'line', 'bar']),
  updatedBy: z.string(),
  updatedAt: z.string(),
});
export type Panels = SharedEntries<typeof panelSchema>;

/** The shared dashboard's panels: bucket `swx_console_panels`, the last 32 revisions of each. */
export function openPanels(bus: Bus): Promise<Panels> {
  return SharedEntries.open(bus, 'swx_console_panels', panelSchema, 'console panels', 32);
}

