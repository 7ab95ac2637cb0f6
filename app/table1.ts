// Table 1 of the platform's description (跨機關即時查證服務內容): the real-time verification datasets, who asks for
// each and who answers it. The seed of the query catalogue for the demo and for a fresh deployment.
//
// Read against the original (reference/000_c0769f50b2d63cd1.txt) where the English table is terse:
// - A row with an empty service cell belongs to the service above it: quarantine permits and documents attached to
//   permits are permit-document checks (簽審文件查證); quota write-off data is a tariff-quota check (關稅配額查證).
// - "海/空運進口報單資料" is one line for sea and air declarations; they are separate datasets here (a sea and an
//   air declaration are different documents) with the same askers and provider, so the matrix is unchanged.
// - 一般優質企業 is the general (not the security-certified, 安全認證) level of AEO.
// - Company, business and factory registration are all answered by the Dept. of Commerce (商業司), as the table
//   says, although factory registration is IDB's register elsewhere; NCC, PABP and MPB do not ask for them.
// - COA is 農委會 itself, not its Dept. of Animal Industry (COA-DAI), which appears only in Table 2.
import type { Dataset } from '../engine/catalogue.ts';

const customsClearance = { id: 'customs-clearance', name: 'Customs clearance data', nameZh: '通關資料查證' };
const companyBusiness = { id: 'company-business', name: 'Company and business data', nameZh: '商工資料查證' };
const permitDocuments = { id: 'permit-documents', name: 'Permit documents', nameZh: '簽審文件查證' };
const controlData = { id: 'control-data', name: 'Control data', nameZh: '管制資料查證' };
const tariffQuota = { id: 'tariff-quota', name: 'Tariff quota', nameZh: '關稅配額查證' };

const clearanceAskers = ['BOFT', 'BSMI', 'IDB', 'NCC', 'COA', 'BAPHIQ', 'PABP', 'EPZA', 'DCMP', 'TFDA', 'NTA', 'SPA', 'MPB'];
const companyAskers = ['BOFT', 'BSMI', 'IDB', 'COA', 'BAPHIQ', 'EPZA', 'DCMP', 'TFDA', 'NTA', 'SPA'];

const fromCustoms = (id: string, name: string, nameZh: string, keys: string[]): Dataset =>
  ({ id, name, nameZh, service: customsClearance, keys, askers: clearanceAskers, providers: ['CUSTOMS'] });
const fromCommerce = (id: string, name: string, nameZh: string, keys: string[]): Dataset =>
  ({ id, name, nameZh, service: companyBusiness, keys, askers: companyAskers, providers: ['DOC'] });

export const table1: readonly Dataset[] = [
  fromCustoms('import-declaration-sea', 'Sea import declarations', '海運進口報單資料', ['declarationNo']),
  fromCustoms('import-declaration-air', 'Air import declarations', '空運進口報單資料', ['declarationNo']),
  fromCustoms('export-declaration-sea', 'Sea export declarations', '海運出口報單資料', ['declarationNo']),
  fromCustoms('export-declaration-air', 'Air export declarations', '空運出口報單資料', ['declarationNo']),
  fromCustoms('tax-payment-certificate', 'Tax and fee payment certificates', '稅費繳納證資料', ['certificateNo']),
  fromCustoms('aeo-company', 'AEO (general level) company data', '一般優質企業資料', ['ubn']),
  fromCustoms('customs-clearance-number', 'Customs clearance numbers', '海關通關號碼', ['clearanceNo']),
  fromCommerce('company-registration', 'Company registration', '公司登記資料', ['ubn']),
  fromCommerce('business-registration', 'Business registration', '商業登記資料', ['ubn']),
  fromCommerce('factory-registration', 'Factory registration', '工廠登記資料', ['factoryNo']),
  { id: 'import-alcohol-consent', name: 'Import alcohol consent certificates', nameZh: '進口酒精同意證', service: permitDocuments, keys: ['certificateNo'], askers: ['NTA'], providers: ['IDB'] },
  { id: 'quarantine-permit', name: 'Quarantine permit data', nameZh: '檢疫准單資料', service: permitDocuments, keys: ['permitNo'], askers: ['CDC'], providers: ['CUSTOMS'] },
  { id: 'permit-attached-documents', name: 'Documents attached to permits', nameZh: '簽審檢附文件', service: permitDocuments, keys: ['documentNo'], askers: ['IDB'], providers: ['BAPHIQ', 'TFDA'] },
  { id: 'inbound-passenger', name: 'Inbound passenger data', nameZh: '入境旅客資料', service: controlData, keys: ['passportNo', 'arrivalDate'], askers: ['CUSTOMS'], providers: ['NIA'] },
  { id: 'tariff-quota-certificate', name: 'Tariff quota certificates', nameZh: '關稅配額證資料', service: tariffQuota, keys: ['certificateNo'], askers: ['CUSTOMS'], providers: ['BOT'] },
  { id: 'tariff-quota-write-off', name: 'Tariff quota write-off data', nameZh: '關稅配額證核銷資料', service: tariffQuota, keys: ['certificateNo'], askers: ['BOT'], providers: ['CUSTOMS'] },
];
