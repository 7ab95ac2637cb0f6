// Synthetic records for every Table 1 dataset, answered by the demo providers: deterministic (record i of a dataset
// is the same on every run and machine), realistic in shape, and plainly fake in content ("示範", "TEST", "DEMO").
// Records are computed from their index on demand, and every key decodes back to its index, so any number of
// distinct queries costs no memory.
import { SwxError } from '../engine/errors.ts';
import { keyValueFits, keyValueLength } from '../engine/query.ts';
import { table1 } from './table1.ts';

export type DemoRecord = Readonly<Record<string, unknown>>;

const demoSeed = 0x5e_ed_20_24;

// ---- Unified business numbers (統一編號) ----

const ubnWeights = [1, 2, 1, 2, 1, 2, 4, 1];

/** Σ of the digit sums of digit × weight: the 7th digit 7 gives 28, counted as 2 + 8 = 10. */
function ubnSum(digits: string): number {
  let sum = 0;
  for (let i = 0; i < 8; i++) {
    const product = Number(digits[i]) * ubnWeights[i]!;
    sum += Math.floor(product / 10) + (product % 10);
  }
  return sum;
}

/**
 * The Ministry of Finance check of an 8-digit unified business number: weights 1,2,1,2,1,2,4,1, the digits of each
 * product summed; valid when the total divides by 5 (by 10 before the MoF widened the range on 2023-04-01; pass
 * `divisor` 10 for the old rule). When the 7th digit is 7 its 10 may also count as 1, so total + 1 dividing passes.
 * Sources: MoF/FIA "營利事業統一編號檢查碼邏輯修正說明" (fia.gov.tw), with its examples in the tests.
 */
export function isValidUbn(value: unknown, divisor: 5 | 10 = 5): boolean {
  if (typeof value !== 'string' || !/^[0-9]{8}$/.test(value)) return false;
  const sum = ubnSum(value);
  return sum % divisor === 0 || (value[6] === '7' && (sum + 1) % divisor === 0);
}

/** The UBN with these first seven digits whose total divides by 10, so that old and new checks both accept it. */
function ubnFrom(prefix: number): string {
  const first7 = String(prefix).padStart(7, '0');
  return first7 + String((10 - (ubnSum(`${first7}0`) % 10)) % 10);
}

// ---- Taiwan customs declaration numbers (報單號碼) ----

/**
 * 14 characters, five parts 2/2/2/3/5 (written AA/BE/13/101/00001): the declaration office (first letter A-D), the
 * office it was transferred from (two spaces when none; else A-G then a letter or digit), the year (last two digits
 * of the ROC year), the ship or office code, and the loading-list or receipt serial. Based on the field split and
 * checks of the CPT/Trade-Van declaration entry script (advconfig.js: "declno 字串以報單格式 ab/cd/ef/ghi/jklmn",
 * checks "port" and "declno2") and the field names 關別 / 船或關代號 / 裝貨單或收序號 in clearance software; the
 * year reading of the third part follows the ROC-year convention, which the script does not state.
 */
export const declarationNumberShape = /^[A-D][A-Z](?: {2}|[A-G][A-Z0-9])[0-9]{2}[A-Z0-9]{3}[0-9]{5}$/;

// ---- Deterministic randomness and key spaces ----

type Random = () => number;

/** mulberry32 seeded by the stream name and the record index: record i never depends on records before it. */
function randomFor(stream: string, index: number): Random {
  let state = demoSeed;
  for (let i = 0; i < stream.length; i++) state = Math.imul(state ^ stream.charCodeAt(i), 16777619);
  state = (state ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), state | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const between = (random: Random, min: number, max: number) => min + Math.floor(random() * (max - min + 1));
const pick = <T>(random: Random, items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
const codeCharacters = [...'0123456789ABCDEFGHJKLMNPQRSTUVWXYZ'];
const alphanumeric = (random: Random, length: number) => Array.from({ length }, () => pick(random, codeCharacters)).join('');

/** A bijection on 0..size-1 (a·i + b mod size, a coprime to size): serials look scattered yet decode to the index. */
class Scatter {
  private readonly inverse: bigint;
  constructor(readonly size: number, private readonly a: number, private readonly b: number) {
    this.inverse = modularInverse(BigInt(a), BigInt(size));
  }
  forward(index: number): number {
    return Number((BigInt(this.a) * BigInt(index) + BigInt(this.b)) % BigInt(this.size));
  }
  back(value: number): number {
    const size = BigInt(this.size);
    return Number((((BigInt(value) - BigInt(this.b)) % size + size) * this.inverse) % size);
  }
}

function modularInverse(a: bigint, m: bigint): bigint {
  let [r0, r1, s0, s1] = [a, m, 1n, 0n];
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1, s0, s1] = [r1, r0 - q * r1, s1, s0 - q * s1];
  }
  if (r0 !== 1n) throw new Error(`${a} has no inverse modulo ${m}`);
  return ((s0 % m) + m) % m;
}

/** A day in 2024-2025 (ROC 113-114), as ISO and as the ROC yyyMMdd that Taiwanese registers print. */
function dayOf(random: Random, fromDay = 0, spanDays = 700): { iso: string; roc: string; rocYear: number } {
  const date = new Date(Date.UTC(2024, 0, 1) + (fromDay + between(random, 0, spanDays - 1)) * 86_400_000);
  const rocYear = date.getUTCFullYear() - 1911;
  const iso = date.toISOString().slice(0, 10);
  return { iso, roc: `${String(rocYear).padStart(3, '0')}${iso.slice(5, 7)}${iso.slice(8, 10)}`, rocYear };
}
const addDays = (iso: string, days: number) => new Date(Date.parse(iso) + days * 86_400_000).toISOString().slice(0, 10);
const ordinal = (index: number) => String(index + 1).padStart(4, '0');
const numeric = (value: string, length: number) => (new RegExp(`^[0-9]{${length}}$`).test(value) ? Number(value) : undefined);

// ---- Populations shared across datasets (a declaration's importer is a registered company, etc.) ----

const industries = [
  { zh: '電子', en: 'ELECTRONICS', category: '26電子零組件製造業', hsCode: '854231', goods: '積體電路 Integrated circuits', unit: 'PCE' },
  { zh: '食品', en: 'FOODS', category: '08食品及飼料製造業', hsCode: '190590', goods: '烘焙食品 Bakery products', unit: 'KGM' },
  { zh: '機械', en: 'MACHINERY', category: '29機械設備製造業', hsCode: '847989', goods: '工業機械 Industrial machinery', unit: 'SET' },
  { zh: '化學', en: 'CHEMICALS', category: '18化學原材料、肥料、氮化合物、塑橡膠原料及人造纖維製造業', hsCode: '290511', goods: '甲醇 Methanol', unit: 'KGM' },
  { zh: '紡織', en: 'TEXTILES', category: '11紡織業', hsCode: '540752', goods: '聚酯梭織物 Polyester woven fabrics', unit: 'MTR' },
] as const;
const cities = ['臺北市中正區', '新北市板橋區', '桃園市中壢區', '臺中市西屯區', '臺南市安南區', '高雄市前鎮區'];
const ports = ['JPTYO', 'CNSHA', 'USLAX', 'DEHAM', 'SGSIN', 'KRPUS', 'VNSGN', 'NLRTM'];

/**
 * Companies take the first seven digits 0000000-4999999, sole proprietorships 5000000-9999999, each a scattered
 * 100,000 of them, so most real numbers find nothing here (and the names say 示範 where one does).
 */
const firmsPerRegister = 100_000;
const companyUbns = new Scatter(5_000_000, 2_718_281, 3_862_467);
const businessUbns = new Scatter(5_000_000, 3_141_593, 926_535);

function company(index: number) {
  const random = randomFor('company', index);
  const industry = pick(random, industries);
  const established = dayOf(random, -9000, 8000);
  return {
    ubn: ubnFrom(companyUbns.forward(index)),
    name: `示範${ordinal(index)}${industry.zh}股份有限公司`,
    nameEn: `DEMO ${ordinal(index)} ${industry.en} CO., LTD.`,
    industry,
    representative: `測試代表人${ordinal(index)}`,
    address: `${pick(random, cities)}示範路${between(random, 1, 300)}號`,
    capitalTwd: between(random, 1, 500) * 1_000_000,
    established,
  };
}
const trader = (index: number) => { const { ubn, name } = company(index); return { ubn, name }; };

// ---- The datasets ----

interface Source {
  queryKeys: readonly string[];
  /** Records 0..capacity-1 exist. */
  capacity: number;
  record(index: number): DemoRecord;
  /** The index the query's key decodes to, if it has the right shape; `answer` then checks the whole record. */
  locate(query: Readonly<Record<string, string>>): number | undefined;
  /** Which provider holds record `index`, where a dataset has more than one. */
  holder?(index: number): string;
}

// Declaration offices: the first letter is A-D as the entry script checks; the codes themselves are illustrative.
const seaOffices = ['AA', 'AW', 'CA', 'DA', 'DF'];
const airOffices = ['BA', 'BC', 'CX', 'DZ'];
const allOffices = [...seaOffices, ...airOffices];

function declarations(direction: 'import' | 'export', transport: 'sea' | 'air'): Source {
  const serials = new Scatter(100_000, transport === 'sea' ? 7_919 : 6_007, direction === 'import' ? 38_561 : 70_243);
  const offices = transport === 'sea' ? seaOffices : airOffices;
  const stream = `${direction}-declaration-${transport}`;
  const declarationNo = (index: number, random: Random, rocYear: number) => {
    const office = pick(random, offices);
    const transferredFrom = random() < 0.6 ? '  ' : pick(random, allOffices.filter((other) => other !== office));
    return office + transferredFrom + String(rocYear % 100).padStart(2, '0')
      + (transport === 'sea' ? alphanumeric(random, 3) : String(between(random, 100, 999)))
      + String(serials.forward(index)).padStart(5, '0');
  };
  return {
    queryKeys: ['declarationNo'],
    capacity: serials.size,
    locate: (query) => { const serial = numeric(query.declarationNo!.slice(9), 5); return serial === undefined ? undefined : serials.back(serial); },
    record(index) {
      const random = randomFor(stream, index);
      const declared = dayOf(random);
      const party = trader(between(random, 0, 999));
      const items = Array.from({ length: between(random, 1, 3) }, (_, item) => {
        const industry = pick(random, industries);
        const quantity = between(random, 10, 5000);
        return { item: item + 1, hsCode: industry.hsCode, description: industry.goods, quantity, unit: industry.unit, valueTwd: quantity * between(random, 20, 4000) };
      });
      const valueTwd = items.reduce((sum, item) => sum + item.valueTwd, 0);
      return {
        declarationNo: declarationNo(index, random, declared.rocYear),
        declarationType: direction === 'import' ? 'G1' : 'G5',
        declarationTypeName: direction === 'import' ? '外貨進口' : '國貨出口',
        transport,
        declaredOn: declared.iso,
        [direction === 'import' ? 'importer' : 'exporter']: party,
        ...(transport === 'sea'
          ? { vessel: `DEMO VESSEL ${between(random, 1, 60)}`, voyage: `${between(random, 100, 999)}${pick(random, ['E', 'W', 'N', 'S'])}` }
          : { flightNo: `ZZ${between(random, 100, 999)}` }),
        [direction === 'import' ? 'portOfLoading' : 'portOfDischarge']: pick(random, ports),
        items,
        customsValueTwd: valueTwd,
        ...(direction === 'import' ? { importDutyTwd: Math.round(valueTwd * pick(random, [0, 0.025, 0.05, 0.1])) } : {}),
        status: 'released',
        releasedOn: addDays(declared.iso, between(random, 0, 3)),
      };
    },
  };
}

const importSea = declarations('import', 'sea');

function taxPaymentCertificates(): Source {
  const serials = new Scatter(100_000_000, 48_271, 61_803_399);
  return {
    queryKeys: ['certificateNo'],
    capacity: importSea.capacity,
    // a/bc/d/efghijkl, the 12-character shape the same entry script gives 繳納證 numbers ("feememno"); what the
    // parts mean is not documented there: here the paying office's letter, the ROC year, a kind digit, a serial.
    locate: (query) => { const serial = numeric(query.certificateNo!.slice(4), 8); return serial === undefined ? undefined : serials.back(serial); },
    record(index) {
      const random = randomFor('tax-payment-certificate', index);
      const declaration = importSea.record(index) as { declarationNo: string; declaredOn: string; importer: { ubn: string; name: string }; customsValueTwd: number; importDutyTwd: number };
      const duty = declaration.importDutyTwd;
      const businessTax = Math.round((declaration.customsValueTwd + duty) * 0.05);
      const promotionFee = Math.round(declaration.customsValueTwd * 0.0004);
      return {
        certificateNo: declaration.declarationNo[0]! + declaration.declarationNo.slice(4, 6) + String(between(random, 1, 3))
          + String(serials.forward(index)).padStart(8, '0'),
        declarationNo: declaration.declarationNo,
        payer: declaration.importer,
        importDutyTwd: duty,
        businessTaxTwd: businessTax,
        tradePromotionFeeTwd: promotionFee,
        totalTwd: duty + businessTax + promotionFee,
        paidOn: addDays(declaration.declaredOn, between(random, 0, 2)),
        paidVia: pick(random, ['EDI transfer', 'bank counter', 'online banking']),
      };
    },
  };
}

function ubnKeyed(scatter: Scatter, base: number, record: (index: number) => DemoRecord): Source {
  return {
    queryKeys: ['ubn'],
    capacity: firmsPerRegister,
    locate: (query) => {
      const ubn = query.ubn!;
      if (!isValidUbn(ubn)) return undefined;
      const prefix = Number(ubn.slice(0, 7)) - base;
      return prefix >= 0 && prefix < scatter.size ? scatter.back(prefix) : undefined;
    },
    record,
  };
}

/** Keys made of a fixed prefix and a zero-padded serial: certificate and permit numbers. */
function serialKeyed(key: string, scatter: Scatter, capacity: number, prefixLength: number, record: (index: number, serial: string) => DemoRecord): Source {
  const digits = String(scatter.size - 1).length;
  return {
    queryKeys: [key],
    capacity,
    locate: (query) => { const serial = numeric(query[key]!.slice(prefixLength), digits); return serial === undefined ? undefined : scatter.back(serial); },
    record: (index) => record(index, String(scatter.forward(index)).padStart(digits, '0')),
  };
}

/** Tariff quota certificates: BOT answers for the certificate, Customs for its write-offs, one number for both. */
const quotaSerials = new Scatter(1_000_000, 5_381, 534_211);

/** Certificate `index`, with its random stream left where the certificate ends so each dataset can go on from it. */
function quotaCertificate(index: number, serial: string) {
  const random = randomFor('tariff-quota-certificate', index);
  const issued = dayOf(random);
  const goods = pick(random, [
    { item: '花生 Peanuts', hsCode: '120242' }, { item: '紅豆 Adzuki beans', hsCode: '071332' },
    { item: '大蒜 Garlic', hsCode: '070320' }, { item: '乾香菇 Dried shiitake', hsCode: '071239' },
    { item: '液態乳 Liquid milk', hsCode: '040120' }, { item: '香蕉 Bananas', hsCode: '080390' },
  ]);
  return {
    certificateNo: `TQ${issued.rocYear}${serial}`,
    holder: trader(between(random, 0, 999)),
    ...goods,
    quotaKg: between(random, 10, 500) * 1000,
    issuedOn: issued.iso,
    validUntil: `${issued.iso.slice(0, 4)}-12-31`,
    random,
  };
}

const sources = new Map<string, Source>([
  ['import-declaration-sea', importSea],
  ['import-declaration-air', declarations('import', 'air')],
  ['export-declaration-sea', declarations('export', 'sea')],
  ['export-declaration-air', declarations('export', 'air')],
  ['tax-payment-certificate', taxPaymentCertificates()],
  ['aeo-company', ubnKeyed(companyUbns, 0, (index) => {
    const random = randomFor('aeo-company', index);
    const { ubn, name, nameEn } = company(index);
    const certified = dayOf(random, -700);
    return {
      ubn, name, nameEn,
      level: '一般優質企業 AEO (general)',
      role: pick(random, ['進出口業者 Importer/exporter', '報關業者 Customs broker', '承攬業者 Forwarder', '貨棧業者 Warehouse operator']),
      certificateNo: `AEO-G-${certified.rocYear}-${ordinal(index)}`,
      certifiedOn: certified.iso,
      validUntil: addDays(certified.iso, 3 * 365),
    };
  })],
  // No public format found for 海關通關號碼 (customs' number for a trader without a unified business number):
  // this shape is ours.
  ['customs-clearance-number', serialKeyed('clearanceNo', new Scatter(100_000_000, 16_807, 58_209_749), 100_000, 2, (index, serial) => {
    const random = randomFor('customs-clearance-number', index);
    return {
      clearanceNo: `ZC${serial}`,
      holderName: `TEST TRADER ${ordinal(index)}`,
      holderType: pick(random, ['外國廠商 Foreign firm', '外籍人士 Foreign individual', '非營利團體 Non-profit body']),
      country: pick(random, ['JP', 'US', 'DE', 'SG', 'KR', 'VN']),
      assignedOn: dayOf(random, -1500, 2000).iso,
      status: 'active',
    };
  })],
  ['company-registration', ubnKeyed(companyUbns, 0, (index) => {
    const { industry, established, ...registered } = company(index);
    return { ...registered, organization: '股份有限公司', establishedOn: established.roc, status: '核准設立', industry: industry.category };
  })],
  ['business-registration', ubnKeyed(businessUbns, 5_000_000, (index) => {
    const random = randomFor('business-registration', index);
    return {
      ubn: ubnFrom(5_000_000 + businessUbns.forward(index)),
      name: `示範${ordinal(index)}商行`,
      organization: pick(random, ['獨資', '合夥']),
      owner: `測試負責人${ordinal(index)}`,
      address: `${pick(random, cities)}測試街${between(random, 1, 200)}號`,
      capitalTwd: between(random, 1, 50) * 100_000,
      registeredOn: dayOf(random, -7000, 7500).roc,
      status: '核准設立',
    };
  })],
  // 8 digits: open-data factory lists read the first character as the kind (a digit for an ordinary factory;
  // T, P and S for temporary, managed and specific factories); ordinary factories here.
  ['factory-registration', serialKeyed('factoryNo', new Scatter(100_000_000, 69_069, 44_592_307), firmsPerRegister, 0, (index, serial) => {
    const random = randomFor('factory-registration', index);
    const owner = company(index);
    return {
      factoryNo: serial,
      name: `示範${ordinal(index)}${owner.industry.zh}廠`,
      ubn: owner.ubn,
      companyName: owner.name,
      address: `${pick(random, cities)}工業示範路${between(random, 1, 120)}號`,
      manager: `測試廠長${ordinal(index)}`,
      organization: '股份有限公司',
      registeredOn: dayOf(random, -6000, 6500).roc,
      status: '生產中',
      industry: owner.industry.category,
      mainProducts: owner.industry.goods,
    };
  })],
  ['import-alcohol-consent', serialKeyed('certificateNo', new Scatter(1_000_000, 7_727, 816_406), 1_000_000, 6, (index, serial) => {
    const random = randomFor('import-alcohol-consent', index);
    const issued = dayOf(random);
    const litres = between(random, 1, 200) * 1000;
    return {
      certificateNo: `ALC${issued.rocYear}${serial}`,
      importer: trader(between(random, 0, 999)),
      product: '未變性乙醇 Undenatured ethyl alcohol',
      hsCode: '220710',
      purpose: pick(random, ['工業用 Industrial', '醫藥用 Medical', '研究用 Research']),
      approvedLitres: litres,
      importedLitres: Math.floor(litres * random()),
      issuedOn: issued.iso,
      validUntil: addDays(issued.iso, 180),
    };
  })],
  ['quarantine-permit', serialKeyed('permitNo', new Scatter(1_000_000, 9_973, 286_208), 1_000_000, 5, (index, serial) => {
    const random = randomFor('quarantine-permit', index);
    const arrived = dayOf(random);
    return {
      permitNo: `QP${arrived.rocYear}${serial}`,
      vessel: `DEMO VESSEL ${between(random, 1, 60)}`,
      callSign: `ZZ${alphanumeric(random, 3)}`,
      lastPort: pick(random, ports),
      portOfArrival: pick(random, ['Keelung 基隆', 'Taipei 臺北', 'Taichung 臺中', 'Kaohsiung 高雄', 'Hualien 花蓮']),
      arrivedOn: arrived.iso,
      crew: between(random, 12, 30),
      passengers: pick(random, [0, 0, 0, between(random, 50, 2000)]),
      clearance: pick(random, ['free pratique 准予入港', 'radio pratique 無線電檢疫', 'inspection on board 登輪檢疫']),
      issuedOn: arrived.iso,
    };
  })],
  ['permit-attached-documents', {
    ...serialKeyed('documentNo', new Scatter(10_000_000, 8_191, 9_986_280), 10_000_000, 5, (index, serial) => {
      const random = randomFor('permit-attached-documents', index);
      const issued = dayOf(random);
      const byBaphiq = index % 2 === 0;
      return {
        documentNo: `${byBaphiq ? 'BQ' : 'FD'}${issued.rocYear}${serial}`,
        issuedBy: byBaphiq ? 'BAPHIQ' : 'TFDA',
        documentType: byBaphiq ? '輸入檢疫證明書 Import quarantine certificate' : '輸入食品查驗合格證明 Food import inspection certificate',
        importer: trader(between(random, 0, 999)),
        goods: byBaphiq ? pick(random, ['種苗 Seedlings', '活牛 Live cattle', '原木 Logs']) : pick(random, ['冷凍蝦 Frozen shrimp', '咖啡豆 Coffee beans', '奶粉 Milk powder']),
        issuedOn: issued.iso,
        result: '合格 Passed',
      };
    }),
    holder: (index: number) => (index % 2 === 0 ? 'BAPHIQ' : 'TFDA'),
  }],
  ['inbound-passenger', (() => {
    const passports = new Scatter(100_000, 3_571, 34_825);
    return {
      queryKeys: ['passportNo', 'arrivalDate'],
      capacity: passports.size,
      locate: (query: Readonly<Record<string, string>>) => {
        const passportNo = query.passportNo!;
        const serial = passportNo.startsWith('TEST') ? numeric(passportNo.slice(4), 5) : undefined;
        return serial === undefined ? undefined : passports.back(serial);
      },
      record(index: number) {
        const random = randomFor('inbound-passenger', index);
        return {
          // ICAO Doc 9303 uses UTO (Utopia) for specimen documents; TEST + 5 digits is no country's passport number.
          passportNo: `TEST${String(passports.forward(index)).padStart(5, '0')}`,
          arrivalDate: dayOf(random, 366, 365).iso,
          name: `TEST PASSENGER ${ordinal(index)}`,
          nationality: 'UTO',
          sex: pick(random, ['F', 'M', 'X']),
          dateOfBirth: new Date(Date.UTC(1950 + between(random, 0, 55), between(random, 0, 11), between(random, 1, 28))).toISOString().slice(0, 10),
          flightNo: `ZZ${between(random, 100, 999)}`,
          from: pick(random, ['NRT', 'HKG', 'SIN', 'LAX', 'ICN', 'BKK']),
          portOfEntry: pick(random, ['TPE', 'KHH', 'TSA', 'RMQ']),
          entryStatus: 'admitted',
        };
      },
    };
  })()],
  ['tariff-quota-certificate', serialKeyed('certificateNo', quotaSerials, quotaSerials.size, 5, (index, serial) => {
    const { random, ...certificate } = quotaCertificate(index, serial);
    return { ...certificate, issuedBy: 'BOT', allocation: pick(random, ['標售 Auction', '申請 First come first served']) };
  })],
  ['tariff-quota-write-off', serialKeyed('certificateNo', quotaSerials, quotaSerials.size, 5, (index, serial) => {
    const { certificateNo, quotaKg, hsCode, random } = quotaCertificate(index, serial);
    // Write-offs are the import declarations that used the quota: real records of the sea import dataset.
    let usedKg = 0;
    const writeOffs = [];
    for (let count = between(random, 0, 4); count > 0 && usedKg < quotaKg; count--) {
      const declaration = importSea.record(between(random, 0, importSea.capacity - 1)) as { declarationNo: string; releasedOn: string };
      const kg = Math.min(quotaKg - usedKg, between(random, 1, 50) * 1000);
      usedKg += kg;
      writeOffs.push({ declarationNo: declaration.declarationNo, writtenOffOn: declaration.releasedOn, kg });
    }
    return { certificateNo, hsCode, quotaKg, writeOffs, usedKg, remainingKg: quotaKg - usedKg };
  })],
]);

function sourceOf(datasetId: string): Source {
  const source = sources.get(datasetId);
  if (!source) throw new SwxError('SWX_UNKNOWN_DATASET', `the demo has no data for dataset ${JSON.stringify(String(datasetId).slice(0, 80))}`);
  return source;
}

const providersOf = new Map(table1.map((dataset) => [dataset.id, dataset.providers]));

function holderOf(datasetId: string, source: Source, index: number): string {
  return source.holder?.(index) ?? providersOf.get(datasetId)![0]!;
}

/** The query keys a demo provider of this dataset expects, e.g. ['passportNo', 'arrivalDate']. */
export function queryKeys(datasetId: string): readonly string[] {
  return sourceOf(datasetId).queryKeys;
}

/**
 * The record a demo provider answers for `query`, or undefined when there is none (or `provider` does not hold it).
 * A query without exactly the dataset's keys, each a string of the length the query contract allows (keyValueFits),
 * is refused with SWX_BAD_REQUEST.
 */
export function answer(datasetId: string, query: Readonly<Record<string, string>>, provider?: string): DemoRecord | undefined {
  const source = sourceOf(datasetId);
  if (typeof query !== 'object' || query === null || Array.isArray(query)) throw new SwxError('SWX_BAD_REQUEST', 'the query is not an object');
  for (const key of Object.keys(query)) {
    if (!source.queryKeys.includes(key)) throw new SwxError('SWX_BAD_REQUEST', `${datasetId} is queried by ${source.queryKeys.join(' + ')}, not ${JSON.stringify(key.slice(0, 40))}`);
  }
  for (const key of source.queryKeys) {
    const value: unknown = query[key];
    if (typeof value !== 'string' || !keyValueFits(value)) throw new SwxError('SWX_BAD_REQUEST', `${key}: expected a string of ${keyValueLength.min}-${keyValueLength.max} characters`);
  }
  const index = source.locate(query);
  if (index === undefined || index >= source.capacity) return undefined;
  if (provider !== undefined && holderOf(datasetId, source, index) !== provider) return undefined;
  const record = source.record(index);
  return source.queryKeys.every((key) => record[key] === query[key]) ? record : undefined;
}

/** `count` queries that `answer` answers, each with a different record (for tests, the demo traffic and benches). */
export function sampleQuery(datasetId: string, count: number, provider?: string): Record<string, string>[] {
  const source = sourceOf(datasetId);
  if (!Number.isInteger(count) || count < 0 || count > source.capacity / 2) throw new RangeError(`count must be 0..${source.capacity / 2}`);
  if (provider !== undefined && !providersOf.get(datasetId)!.includes(provider)) return [];
  const queries: Record<string, string>[] = [];
  for (let index = 0; queries.length < count; index++) {
    if (provider !== undefined && holderOf(datasetId, source, index) !== provider) continue;
    const record = source.record(index);
    queries.push(Object.fromEntries(source.queryKeys.map((key) => [key, record[key] as string])));
  }
  return queries;
}
