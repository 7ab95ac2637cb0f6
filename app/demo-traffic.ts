// One round of the demo's traffic as the agencies' systems would send it: declarations to single agencies, a
// notification on every Table 2 topic (and a reply on each two-way one), and items on every Table 3 channel from each of
// its providers. Bodies are small synthetic JSON; where a Table 1 dataset holds the same kind of record (declarations,
// payment certificates, firms, passengers) the item is that record, so what a channel carries can also be queried.
import { audienceService } from '../engine/registry.ts';
import { answer, sampleQuery } from './demo-data.ts';
import { table2 } from './table2.ts';
import { table3 } from './table3.ts';

/** Items each provider of a channel publishes per round: enough to see them arrive in order, few enough to be quick. */
export const itemsPerProvider = 3;

export interface DemoMessage {
  from: string;
  /** The receiver of a direct message; none for a topic or channel, which reach every receiver or requester. */
  to?: string;
  service: string;
  action: string;
  body: Record<string, unknown>;
  /** The index, in the same round, of the message this one answers (sent with Ref-To). */
  replyTo?: number;
}

type Body = Record<string, unknown>;

/** Record `k` of a Table 1 dataset, as its demo provider answers it. */
const record = (dataset: string, k: number) => answer(dataset, sampleQuery(dataset, k + 1)[k]!) as Body;
const firm = (k: number) => { const { ubn, name } = record('company-registration', k); return { ubn, name }; };
const day = (k: number) => new Date(Date.UTC(2025, 2, 1) + k * 86_400_000).toISOString().slice(0, 10);
const serial = (prefix: string, k: number, digits = 6) => `${prefix}${String(k + 1).padStart(digits, '0')}`;

/** The notification on each topic, and the reply on a two-way one, for case `k`. */
const notifications: Record<string, { alert(k: number): Body; reply?(k: number): Body }> = {
  'substandard-feed': {
    alert: (k) => ({ case: serial('FEED-', k, 4), product: 'fish meal 魚粉', hsCode: '230120', importer: firm(k), finding: 'melamine 4.2 mg/kg, above the 2.5 mg/kg limit', action: 'held for re-inspection' }),
  },
  shtc: {
    alert: (k) => ({ case: serial('SHTC-', k, 4), exporter: firm(k + 1), goods: '5-axis machining centre 五軸加工機', hsCode: '845710', eccn: '2B001', destination: 'AE', concern: 'end user linked to weapons production' }),
    reply: (k) => ({ case: serial('SHTC-', k, 4), finding: 'the exporter has a plant in the park; shipment on hold pending licence check', contact: 'park customs liaison' }),
  },
  'rice-inspection': {
    alert: (k) => ({ case: serial('RICE-', k, 4), product: 'polished rice 白米', origin: 'VN', importer: firm(k + 2), lot: serial('LOT-', k, 5), quantityKg: 24_000, finding: 'chlorpyrifos 0.05 mg/kg, above the 0.01 mg/kg limit' }),
  },
  'fishery-safety': {
    alert: (k) => ({ case: serial('FISH-', k, 4), product: 'frozen mackerel 冷凍鯖魚', origin: 'NO', finding: 'histamine 320 mg/kg', source: 'international alert', action: 'inspect every lot of this origin' }),
  },
  'export-fishery-failures': {
    alert: (k) => ({ case: serial('EXPF-', k, 4), plant: serial('TW-EP-', k, 4), product: 'frozen milkfish 冷凍虱目魚', destination: 'US', finding: 'Listeria monocytogenes detected', action: 'exports from the plant suspended' }),
  },
  'food-toy': {
    alert: (k) => ({ case: serial('TOY-', k, 4), product: 'candy-shaped eraser 糖果造型橡皮擦', importer: firm(k + 3), finding: 'food-shaped toy, choking hazard' }),
    reply: (k) => ({ case: serial('TOY-', k, 4), decision: 'seized at the border', declarationNo: record('import-declaration-sea', k).declarationNo }),
  },
};

/** The item body of each channel, for item `k` (numbered across rounds) from `provider`. */
const channelItems: Record<string, (k: number, provider: string) => Body> = {
  declarations: (k) => record(['import-declaration-sea', 'import-declaration-air', 'export-declaration-sea'][k % 3]!, k),
  manifests: (k) => ({ manifestNo: serial('MF', k), vessel: `DEMO VESSEL ${k % 60 + 1}`, voyage: `${200 + k}E`, portOfLoading: 'SGSIN', billsOfLading: 40 + k, containers: 120 + 3 * k }),
  'trade-statistics': (k) => ({ period: `2025-${String(k % 12 + 1).padStart(2, '0')}`, hsCode: '854231', flow: k % 2 ? 'export' : 'import', partner: 'JP', quantity: 1_200_000 + k, valueTwd: 8_400_000_000 + k * 1000 }),
  'taxes-fees': (k) => record('tax-payment-certificate', k),
  'firms-to-customs': (k, provider) => ({ ...firm(k), register: { BOFT: 'importer/exporter 出進口廠商', DOC: 'company 公司登記', SPA: 'science park firm 園區事業' }[provider], status: 'registered', changedOn: day(k) }),
  'firms-from-customs': (k) => record('aeo-company', k),
  'brokers-warehouses': (k) => ({ licenceNo: serial('CB', k, 5), kind: k % 2 ? 'bonded warehouse 保稅倉庫' : 'customs broker 報關業者', ...firm(k), office: 'Keelung 基隆關' }),
  'port-operations': (k) => ({ vessel: `DEMO VESSEL ${k % 60 + 1}`, callSign: `ZZ${100 + k}`, port: 'TWKHH', berth: 60 + k % 20, arrival: `${day(k)}T06:00:00Z`, departure: `${day(k + 1)}T18:00:00Z`, containers: 800 + k }),
  forwarders: (k, provider) => ({ licenceNo: serial(provider === 'CAA' ? 'AF' : 'SF', k, 5), mode: provider === 'CAA' ? 'air' : 'sea', ...firm(k + 5), validUntil: day(k + 700) }),
  'aircraft-movements': (k) => ({ flightNo: `ZZ${300 + k}`, registration: `B-${18_000 + k}`, airport: 'TPE', movement: k % 2 ? 'departure' : 'arrival', scheduled: `${day(k)}T09:30:00Z`, actual: `${day(k)}T09:42:00Z` }),
  'entry-exit-control-to-customs': (k) => ({ caseNo: serial('MOJ-', k), person: `TEST PERSON ${k + 1}`, restriction: 'exit ban 限制出境', authority: 'district prosecutors office', from: day(k), until: day(k + 180) }),
  'entry-exit-control-to-boca': (k) => ({ caseNo: serial('CUS-', k), person: `TEST PERSON ${k + 101}`, restriction: 'exit ban for overdue duties 欠稅限制出境', amountTwd: 1_500_000 + k * 1000, from: day(k) }),
  'passenger-watch-list': (k) => ({ alertNo: serial('WL', k), passportNo: `TEST${String(90_000 + k)}`, flightNo: `ZZ${500 + k}`, arrival: day(k), reason: 'suspected courier of controlled drugs' }),
  'controlled-data': (k) => ({ recordNo: serial('CD', k), passportNo: `TEST${String(80_000 + k)}`, control: 'watch on entry 入境注意', until: day(k + 90) }),
  'advance-passenger-info': (k) => record('inbound-passenger', k),
  'permit-approvals': (k) => ({ permitNo: serial('BOM', k), goods: 'limestone 石灰石', hsCode: '252100', importer: firm(k + 7), approvedTonnes: 5000 + k * 100, validUntil: day(k + 180) }),
  'tariff-to-customs': (k) => ({ hsCode: ['854231', '030389', '100630'][k % 3], importRegulation: ['121', 'F01', 'B01'][k % 3], effectiveFrom: day(k) }),
  'tariff-to-fia': (k) => ({ hsCode: ['854231', '030389', '100630'][k % 3], dutyRates: { column1: ['0%', '15%', '45%'][k % 3], column2: ['0%', '10%', '40%'][k % 3] }, effectiveFrom: day(k) }),
  'tax-cross-check': (k) => ({ ...firm(k + 9), period: `2025-${String(k % 6 * 2 + 1).padStart(2, '0')}`, salesTwd: 52_000_000 + k * 10_000, businessTaxTwd: 2_600_000 + k * 500 }),
  'drawback-standards': (k) => ({ standardNo: serial('DS', k, 5), product: 'polyester fabric 聚酯布', rawMaterial: 'polyester filament 聚酯絲', usagePerUnit: 1.08, unit: 'KGM' }),
  'drawback-notices': (k) => ({ noticeNo: serial('DN', k), exportDeclarationNo: record('export-declaration-sea', k).declarationNo, claimant: firm(k + 11), refundTwd: 48_000 + k * 100 }),
  'clearance-data': (k) => { const { declarationNo, declarationType, declaredOn, status, releasedOn } = record('export-declaration-air', k); return { declarationNo, declarationType, declaredOn, status, releasedOn }; },
  'clearance-network-data': (k) => ({ messageType: 'N5105', sender: firm(k + 13).ubn, declarationNo: record('import-declaration-air', k).declarationNo, transmittedAt: `${day(k)}T02:15:00Z` }),
  'other-clearance': (k) => ({ notice: ['release 放行通知', 'transshipment permit 轉運准單', 'ship clearance 船舶結關'][k % 3], declarationNo: record('import-declaration-sea', k).declarationNo, containerNo: `DEMU${String(1_000_000 + k)}` }),
};

export function demoTraffic(round: number): DemoMessage[] {
  const traffic: DemoMessage[] = ['BOFT', 'BSMI', 'TFDA'].map((to, n) => ({
    from: 'CUSTOMS', to, service: 'customs.declaration', action: 'import-declaration', body: record('import-declaration-sea', (round - 1) * 3 + n),
  }));
  for (const topic of table2) {
    const { alert, reply } = notifications[topic.id]!;
    const from = topic.notifiers[0]!;
    traffic.push({ from, service: audienceService.topic(topic.id), action: 'alert', body: alert(round - 1) });
    // In a two-way topic a receiver of the alert answers it; the hub takes its reply to the notifiers.
    if (topic.twoWay) {
      const replier = topic.receivers.find((receiver) => receiver !== from)!;
      traffic.push({ from: replier, service: audienceService.topic(topic.id), action: 'reply', body: reply!(round - 1), replyTo: traffic.length - 1 });
    }
  }
  for (const channel of table3) {
    const perRound = channel.providers.length * itemsPerProvider;
    channel.providers.forEach((from, p) => {
      for (let n = 0; n < itemsPerProvider; n++) {
        const k = (round - 1) * perRound + p * itemsPerProvider + n;
        traffic.push({ from, service: audienceService.channel(channel.id), action: 'item', body: { sequence: k + 1, ...channelItems[channel.id]!(k, from) } });
      }
    });
  }
  return traffic;
}
