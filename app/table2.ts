// Table 2 of the platform's description (跨機關情資通報服務內容): the alert notification topics, who notifies on each
// and who receives. A message with `Swx-Service: notify.<id>` reaches every receiver (engine/registry.ts).
//
// Unlike Table 1's catalogue, a fresh hub is not seeded with these: a topic names the agencies on it, and until an
// operator has registered each with its certificate and endpoint a notification to one not there is dead-lettered
// (SWX_UNKNOWN_RECEIVER). Which topics a deployment runs is the operator's to register; the demo registers all of them.
//
// Read against the original (reference/000_c0769f50b2d63cd1.txt):
// - 農委會畜牧處 is the Council of Agriculture's Dept. of Animal Industry (COA-DAI), not COA itself.
// - SHTC: BOFT notifies the Hsinchu, Central and Southern Science Park Bureaus and 加工出口區, the export processing
//   zones, whose agency is their administration (EPZA); both columns say 雙向通報, so each of the four may notify
//   BOFT back (twoWay: a receiver's message reaches the notifiers).
// - Food-toy import inspection: BSMI and TFDA stand on both sides, two-way. Both are notifiers, and the sender is
//   never among its own receivers, so either one's notification reaches the other.
import type { Topic } from '../engine/registry.ts';

export const table2: readonly Topic[] = [
  { id: 'substandard-feed', name: 'Preventing substandard feed imports', nameZh: '防止不良飼料輸入', notifiers: ['COA-DAI'], receivers: ['TFDA'], twoWay: false },
  {
    id: 'shtc', name: 'Strategic high-tech commodities (SHTC) diverted to weapons', nameZh: '戰略性高科技貨品（SHTC）轉作軍事武器管制',
    notifiers: ['BOFT'], receivers: ['HSP', 'CTSP', 'STSP', 'EPZA'], twoWay: true,
  },
  { id: 'rice-inspection', name: 'Imported rice failing safety inspection', nameZh: '進口稻米衛生安全檢驗不合格', notifiers: ['TFDA'], receivers: ['AFA'], twoWay: false },
  { id: 'fishery-safety', name: 'International fishery product safety', nameZh: '國際漁產品衛生安全', notifiers: ['TFDA'], receivers: ['BSMI', 'FA'], twoWay: false },
  {
    id: 'export-fishery-failures', name: 'Export plants\' fishery products failing inspection', nameZh: '外銷廠場衛生檢驗不合格漁產品管理',
    notifiers: ['BSMI'], receivers: ['FA', 'TFDA'], twoWay: false,
  },
  { id: 'food-toy', name: 'Food-toy import inspection', nameZh: '食品玩具進口查驗', notifiers: ['BSMI', 'TFDA'], receivers: ['BSMI', 'TFDA'], twoWay: true },
];
