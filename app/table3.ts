// Table 3 of the platform's description (跨機關資料交換服務內容): the bulk data exchanges, each row a channel with its
// providers and requesters. An item with `Swx-Service: exchange.<id>` from a provider reaches every requester, in the
// order published (engine/registry.ts, pipelines/route.ts).
//
// Not seeded into a fresh hub, for the reason given in app/table2.ts: a channel names its agencies, and an item for a
// requester not yet registered is dead-lettered. The demo registers every channel.
//
// Read against the original (reference/000_c0769f50b2d63cd1.txt):
// - Each row is a channel of its own, also where one exchange (業者, 航港, 管制, 稅則, 沖退原料稅, 加值/稽查) has
//   several: its rows run in different directions between different agencies, and a requester receives only the
//   rows it is named in. The id says the dataset, and the direction where two rows share one.
// - A row with an empty dataset cell exchanges the dataset of the row above, the other way: firm data from Customs to
//   BOFT, FIA and SPA; persons under entry/exit control from Customs to BOCA; tariff data from Customs to FIA.
// - Rows with several providers (firm data from BOFT, DOC and SPA; forwarders from MPB and CAA) are one channel each:
//   every provider's items reach the requester on the one lane, in the order the hub took them.
// - 經加處 is EPZA, 刑警局 is CIB, 通關網路 is Trade-Van (TRADEVAN), the clearance network operator.
// - Among the declaration requesters COA is 農委會 itself, as in Table 1.
import type { Channel } from '../engine/registry.ts';

interface Exchange { name: string; nameZh: string }

const declarations = { name: 'Declarations', nameZh: '報單資料交換' };
const manifests = { name: 'Manifests', nameZh: '艙單資料交換' };
const statistics = { name: 'Statistics', nameZh: '統計資料交換' };
const taxesFees = { name: 'Taxes and fees', nameZh: '稅費資料交換' };
const traders = { name: 'Traders', nameZh: '業者資料交換' };
const ports = { name: 'Ports', nameZh: '航港資料交換' };
const control = { name: 'Control', nameZh: '管制資料交換' };
const permits = { name: 'Permits', nameZh: '簽審資料交換' };
const tariff = { name: 'Tariff', nameZh: '稅則資料交換' };
const taxCrossCheck = { name: 'Tax cross-check', nameZh: '稅務勾稽資料' };
const drawback = { name: 'Raw-material drawback', nameZh: '沖退原料稅資料交換' };
const valueAdded = { name: 'Value-added / audit', nameZh: '加值/稽查資料交換' };
const otherClearance = { name: 'Other clearance data', nameZh: '其他通關資料交換' };

/** One row: the channel is named by its exchange and dataset, in English and as the original writes them. */
const row = (id: string, exchange: Exchange, dataset: string, datasetZh: string, providers: string[], requesters: string[]): Channel =>
  ({ id, name: `${exchange.name}: ${dataset}`, nameZh: `${exchange.nameZh}：${datasetZh}`, dataset: `${dataset} (${datasetZh})`, providers, requesters });

export const table3: readonly Channel[] = [
  row('declarations', declarations, 'sea/air import, export and release declarations', '海/空運進口報單資料、出口報單資料、放行報單資料', ['CUSTOMS'],
    ['AEC', 'EPA', 'BOFT', 'BSMI', 'BAPHIQ', 'IDB', 'BOE', 'COA', 'PABP', 'EPZA', 'AFA', 'DCMP', 'TFDA', 'NTA', 'SPA', 'MPB', 'FIA', 'CIB', 'BOM', 'BOT']),
  row('manifests', manifests, 'sea import manifests, sea export loading lists', '海運進口艙單、海運出口裝船清表', ['CUSTOMS'], ['MPB']),
  row('trade-statistics', statistics, 'trade statistics', '貿易統計資料', ['CUSTOMS'], ['BOE', 'COA']),
  row('taxes-fees', taxesFees, 'drawback, import taxes and fees, deposit refunds, overdue taxes', '沖退稅資料、進口稅費資料、押金退押資料、滯欠稅費資料', ['CUSTOMS'], ['BOFT', 'FIA', 'NTA']),
  row('firms-to-customs', traders, 'firm data', '廠商資料', ['BOFT', 'DOC', 'SPA'], ['CUSTOMS']),
  row('firms-from-customs', traders, 'firm data', '廠商資料', ['CUSTOMS'], ['BOFT', 'FIA', 'SPA']),
  row('brokers-warehouses', traders, 'customs brokers, warehouse operators', '報關業者資料、倉儲業者資料', ['CUSTOMS'], ['FIA']),
  row('port-operations', ports, 'slot allocation, operator staff, ship routes, ship arrivals/departures, containers', '艙位配置、業者人員、船舶航線、船舶進出港、貨櫃資料', ['MPB'], ['CUSTOMS']),
  row('forwarders', ports, 'forwarders', '承攬業者資料', ['MPB', 'CAA'], ['CUSTOMS']),
  row('aircraft-movements', ports, 'aircraft arrivals/departures', '航空器到離場資料', ['ANWS'], ['CUSTOMS']),
  row('entry-exit-control-to-customs', control, 'persons under entry/exit control', '入出境管制人員', ['MOJ'], ['CUSTOMS']),
  row('entry-exit-control-to-boca', control, 'persons under entry/exit control', '入出境管制人員', ['CUSTOMS'], ['BOCA']),
  row('passenger-watch-list', control, 'passenger watch-list alerts', '旅客預警名單通報資料', ['CUSTOMS'], ['CIB']),
  row('controlled-data', control, 'controlled data', '管制性資料', ['CUSTOMS'], ['NIA']),
  row('advance-passenger-info', control, 'advance passenger information', '航前旅客資料', ['NIA'], ['CUSTOMS']),
  row('permit-approvals', permits, 'permit approval documents', '簽審同意文件', ['BOM'], ['CUSTOMS']),
  row('tariff-to-customs', tariff, 'tariff data', '稅則資料', ['BOFT'], ['CUSTOMS']),
  row('tariff-to-fia', tariff, 'tariff data', '稅則資料', ['CUSTOMS'], ['FIA']),
  row('tax-cross-check', taxCrossCheck, 'tax data', '稅務資料', ['FIA'], ['CUSTOMS']),
  row('drawback-standards', drawback, 'drawback standard comparison data', '核退標準比對資料', ['IDB'], ['CUSTOMS']),
  row('drawback-notices', drawback, 'drawback notices', '退稅通知', ['CUSTOMS'], ['IDB']),
  row('clearance-data', valueAdded, 'customs clearance data', '海關通關資料', ['CUSTOMS'], ['MOTC', 'TRADEVAN']),
  row('clearance-network-data', valueAdded, 'clearance network data', '通關網路資料', ['TRADEVAN'], ['CUSTOMS']),
  row('other-clearance', otherClearance, 'goods release notices, transshipment permits, approval notices, ship clearance, containers', '貨物放行通知、轉運准單、核准通知、船舶結關、貨櫃資料', ['CUSTOMS'], ['MPB']),
];
