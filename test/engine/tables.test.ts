// Tables 2 and 3 (app/table2.ts, app/table3.ts) against the platform's description: the rows below are written as the
// original (Traditional Chinese) prints them, agencies by name, and mapped to ids with the reference's agency list,
// so a row left out, an agency on the wrong side or an id not in the list fails here; and the README's tables of them.
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { channelSchema, topicSchema } from '../../engine/registry.ts';
import { agencies } from '../../app/agencies.ts';
import { table1 } from '../../app/table1.ts';
import { table2 } from '../../app/table2.ts';
import { table3 } from '../../app/table3.ts';

// The reference's agency list (domain.md), and the other names the tables give the same agencies.
const agencyList: Record<string, string> = {
  關務署: 'CUSTOMS', 貿易局: 'BOFT', 標檢局: 'BSMI', 工業局: 'IDB', 通傳會: 'NCC', 農委會: 'COA', 畜牧處: 'COA-DAI', 防檢局: 'BAPHIQ',
  農科園區: 'PABP', 加工區管理處: 'EPZA', 經加處: 'EPZA', 中醫藥司: 'DCMP', 食藥署: 'TFDA', 國庫署: 'NTA', 科管局: 'SPA', 竹科管理局: 'HSP',
  中科管理局: 'CTSP', 南科管理局: 'STSP', 航港局: 'MPB', 商業司: 'DOC', 疾管署: 'CDC', 移民署: 'NIA', 臺灣銀行: 'BOT', 農糧署: 'AFA',
  漁業署: 'FA', 原能會: 'AEC', 環保署: 'EPA', 能源局: 'BOE', 財政資訊中心: 'FIA', 刑事警察局: 'CIB', 礦務局: 'BOM', 民航局: 'CAA',
  飛航服務總臺: 'ANWS', 法務部: 'MOJ', 領事事務局: 'BOCA', 交通部: 'MOTC', 通關網路: 'TRADEVAN',
};
const otherNames: Record<string, string> = { 農委會畜牧處: 'COA-DAI', 刑警局: 'CIB', 加工出口區: 'EPZA' };
const ids = (names: string) => names.split('、').map((name) => agencyList[name] ?? otherNames[name] ?? `unknown agency ${name}`);

// 表2: notification, notifiers, receivers, two-way (雙向通報).
const original2: [string, string, string, boolean][] = [
  ['防止不良飼料輸入', '農委會畜牧處', '食藥署', false],
  ['戰略性高科技貨品（SHTC）轉作軍事武器管制', '貿易局', '竹科管理局、中科管理局、南科管理局、加工出口區', true],
  ['進口稻米衛生安全檢驗不合格', '食藥署', '農糧署', false],
  ['國際漁產品衛生安全', '食藥署', '標檢局、漁業署', false],
  ['外銷廠場衛生檢驗不合格漁產品管理', '標檢局', '漁業署、食藥署', false],
  ['食品玩具進口查驗', '標檢局、食藥署', '標檢局、食藥署', true],
];

// 表3: exchange and dataset, '' where the original leaves the cell empty (the row above's), providers, requesters.
const original3: [string, string, string, string][] = [
  ['報單資料交換', '海/空運進口報單資料、出口報單資料、放行報單資料', '關務署', '原能會、環保署、貿易局、標檢局、防檢局、工業局、能源局、農委會、農科園區、經加處、農糧署、中醫藥司、食藥署、國庫署、科管局、航港局、財政資訊中心、刑警局、礦務局、臺灣銀行'],
  ['艙單資料交換', '海運進口艙單、海運出口裝船清表', '關務署', '航港局'],
  ['統計資料交換', '貿易統計資料', '關務署', '能源局、農委會'],
  ['稅費資料交換', '沖退稅資料、進口稅費資料、押金退押資料、滯欠稅費資料', '關務署', '貿易局、財政資訊中心、國庫署'],
  ['業者資料交換', '廠商資料', '貿易局、商業司、科管局', '關務署'],
  ['', '', '關務署', '貿易局、財政資訊中心、科管局'],
  ['', '報關業者資料、倉儲業者資料', '關務署', '財政資訊中心'],
  ['航港資料交換', '艙位配置、業者人員、船舶航線、船舶進出港、貨櫃資料', '航港局', '關務署'],
  ['', '承攬業者資料', '航港局、民航局', '關務署'],
  ['', '航空器到離場資料', '飛航服務總臺', '關務署'],
  ['管制資料交換', '入出境管制人員', '法務部', '關務署'],
  ['', '', '關務署', '領事事務局'],
  ['', '旅客預警名單通報資料', '關務署', '刑事警察局'],
  ['', '管制性資料', '關務署', '移民署'],
  ['', '航前旅客資料', '移民署', '關務署'],
  ['簽審資料交換', '簽審同意文件', '礦務局', '關務署'],
  ['稅則資料交換', '稅則資料', '貿易局', '關務署'],
  ['', '', '關務署', '財政資訊中心'],
  ['稅務勾稽資料', '稅務資料', '財政資訊中心', '關務署'],
  ['沖退原料稅資料交換', '核退標準比對資料', '工業局', '關務署'],
  ['', '退稅通知', '關務署', '工業局'],
  ['加值/稽查資料交換', '海關通關資料', '關務署', '交通部、通關網路'],
  ['', '通關網路資料', '通關網路', '關務署'],
  ['其他通關資料交換', '貨物放行通知、轉運准單、核准通知、船舶結關、貨櫃資料', '關務署', '航港局'],
];

test('Table 2: every notification of the original, with its notifiers, receivers and direction', () => {
  assert.is(table2.length, original2.length);
  original2.forEach(([nameZh, notifiers, receivers, twoWay], i) => {
    const topic = table2[i]!;
    assert.is(topic.nameZh, nameZh);
    assert.equal(topic.notifiers, ids(notifiers), `${topic.id} notifiers`);
    assert.equal(topic.receivers, ids(receivers), `${topic.id} receivers`);
    assert.is(topic.twoWay, twoWay, `${topic.id} two-way`);
  });
});

test('Table 3: every row of the original is a channel, empty cells read as the row above\'s', () => {
  assert.is(table3.length, original3.length);
  let exchange = '';
  let dataset = '';
  original3.forEach(([exchangeCell, datasetCell, providers, requesters], i) => {
    exchange = exchangeCell || exchange;
    dataset = datasetCell || dataset;
    const channel = table3[i]!;
    assert.is(channel.nameZh, `${exchange}：${dataset}`, channel.id);
    assert.ok(channel.dataset.includes(dataset), `${channel.id}: ${channel.dataset}`);
    assert.equal(channel.providers, ids(providers), `${channel.id} providers`);
    assert.equal(channel.requesters, ids(requesters), `${channel.id} requesters`);
  });
});

test('topics and channels fit the registry\'s schemas, with distinct readable ids', () => {
  for (const topic of table2) assert.equal(topicSchema.parse(topic), topic);
  for (const channel of table3) assert.equal(channelSchema.parse(channel), channel);
  assert.is(new Set(table2.map((topic) => topic.id)).size, table2.length);
  assert.is(new Set(table3.map((channel) => channel.id)).size, table3.length);
});

test('the agencies are the reference\'s list, each named in Table 1, 2 or 3, and the tables name no other', () => {
  assert.equal(agencies.map((agency) => agency.id).sort(), [...new Set(Object.values(agencyList))].sort());
  for (const agency of agencies) assert.ok(agency.nameZh.endsWith(Object.keys(agencyList).find((name) => agencyList[name] === agency.id)!), agency.id);
  const named = new Set([
    ...table1.flatMap((dataset) => [...dataset.askers, ...dataset.providers]),
    ...table2.flatMap((topic) => [...topic.notifiers, ...topic.receivers]),
    ...table3.flatMap((channel) => [...channel.providers, ...channel.requesters]),
  ]);
  assert.equal([...named].sort(), agencies.map((agency) => agency.id).sort());
});

test('the README\'s tables of topics and channels say what the data says', () => {
  const rows = new Map<string, string[][]>();
  for (const line of readFileSync(new URL('../../README.md', import.meta.url), 'utf8').split('\n')) {
    const cells = line.split('|').slice(1, -1).map((cell) => cell.trim());
    if (cells.length === 3) for (const id of cells[0]!.matchAll(/`([a-z0-9-]+)`/g)) rows.set(id[1]!, [...rows.get(id[1]!) ?? [], cells.slice(1)]);
  }
  const listed = (id: string) => (rows.get(id) ?? []).map((cells) => cells.map((cell) => cell.split(', ')));
  for (const topic of table2) assert.equal(listed(topic.id), [[topic.notifiers, topic.receivers]], topic.id);
  for (const channel of table3) assert.equal(listed(channel.id), [[channel.providers, channel.requesters]], channel.id);
});

test.run();
