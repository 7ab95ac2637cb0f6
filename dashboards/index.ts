// The console's data layer over the hub's ClickHouse store: message search and timelines, statistics from the
// rollups, the audit log and the analysts' sandbox. The tables are the store's migrations (engine/store/migrations.ts),
// so every hub process has them and their materialized views see every evidence row from the first.
export { AnalysisRefused, analysisTables, defaultAnalysisLimits, runAnalysis, tablesRead, type AnalysisLimits, type AnalysisResult } from './analysis.ts';
export { AuditLog, auditHash, verifyAudit, type AuditEntry, type AuditRecord, type AuditVerdict } from './audit.ts';
export {
  findMessages, keyKinds, maxPageSize, messageStates, messageTimeline, searchMessages,
  type KeyKind, type MessageCursor, type MessageFilter, type MessagePage, type MessageState, type MessageSummary, type TimelineEntry,
} from './search.ts';
export { toCsv, topTalkers, traffic, trend, type Dimension, type Grain, type StatsQuery, type TalkerRow, type TrafficRow } from './stats.ts';
