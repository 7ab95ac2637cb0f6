// The pages' words in Traditional Chinese and English. The hub chose the language from Accept-Language (the page's
// lang attribute); the switch overrides it and the choice is remembered in this browser.

const en = {
  title: 'swx exchange console',
  skip: 'Skip to content',
  language: 'Language',
  signIn: 'Sign in', signOut: 'Sign out', user: 'User name', password: 'Password', signedInAs: 'Signed in as',
  navigation: 'Pages',
  overview: 'Overview', messages: 'Messages', partners: 'Partners', access: 'Services and access', evidence: 'Evidence',
  statistics: 'Statistics', analysis: 'Analysis', alerts: 'Alerts', settings: 'Settings', audit: 'Audit', users: 'Users',
  loading: 'Loading…', missing: 'missing', none: 'Nothing to show.', refused: 'Refused', missingRoute: 'This hub does not serve the route this part needs:',
  notAllowed: 'Your role does not allow this page.',
  search: 'Search', next: 'Next page', first: 'First page', filters: 'Filters', id: 'Any id (message, conversation, reference)',
  keyKind: 'Id kind', any: 'any', partner: 'Partner', service: 'Service', protocol: 'Protocol', state: 'State', since: 'Since', until: 'Until',
  timeline: 'Timeline', open: 'Open', evidenceLink: 'Evidence',
  deadLetters: 'Dead letters', preview: 'Preview resend', resend: 'Resend', reason: 'Reason (required)', keepId: 'Keep message id', renewId: 'New message id',
  filter: 'Filter (JSON)', matched: 'Messages matched', resent: 'Resent',
  add: 'Add', edit: 'Edit', save: 'Save', cancel: 'Cancel', disable: 'Disable', enable: 'Enable', remove: 'Remove', history: 'History',
  name: 'Name', certificates: 'Certificates (PEM)', sshKeys: 'SSH keys', endpoints: 'Endpoints (JSON)', receive: 'Receives by', enabled: 'Enabled',
  partnerId: 'Partner id', saved: 'Saved.', addKey: 'Add SSH key', publicKey: 'Public key (OpenSSH)',
  testConnection: 'Test connection', connectionTest: 'Connection test (no message sent)', outcome: 'Outcome', reachable: 'reached', unreachable: 'failed', testDetail: 'Detail', took: 'ms',
  queryAccess: 'Query access (Table 1)', topics: 'Notification topics (Table 2)', channels: 'Exchange channels (Table 3)', services: 'Services',
  asker: 'asks', provider: 'provides', notifier: 'notifies', receiver: 'receives', requester: 'requests',
  matrixHint: 'Choose a cell to change what the partner may do; the change is saved with the reason given.',
  messageId: 'Message id', conversationId: 'Conversation id', from: 'From', to: 'To', retrieve: 'Retrieve', download: 'Download bundle', verify: 'Verify bundle',
  verdict: 'Verdict', valid: 'Valid', invalid: 'Not valid',
  grain: 'Grain', by: 'By', chart: 'Chart', table: 'Table', exportCsv: 'Export CSV', traffic: 'Traffic', trend: 'Trend', topTalkers: 'Top talkers',
  latency: 'Latency', errors: 'Errors',
  sql: 'SQL (one SELECT)', run: 'Run', saveAsPanel: 'Save as panel', panelName: 'Panel name', panels: 'Saved panels', show: 'Show as',
  severity: 'Severity', kind: 'Kind', subject: 'Subject', message: 'Message',
  runtime: 'Runtime settings', hubSettings: 'Settings the hub runs with', value: 'Value',
  verifyAudit: 'Verify the audit chains', roles: 'Roles', addUser: 'Add user', disabled: 'Disabled',
  backlog: 'Backlog', breaker: 'Breaker', stampingBacklog: 'Time-stamp backlog', disk: 'Data disk free', expiring: 'Certificates', days: 'Days left',
} satisfies Record<string, string>;

export type Word = keyof typeof en;

const zhTW: Record<Word, string> = {
  title: 'swx 跨機關資料交換管理台',
  skip: '跳到主要內容',
  language: '語言',
  signIn: '登入', signOut: '登出', user: '使用者名稱', password: '密碼', signedInAs: '目前登入',
  navigation: '頁面',
  overview: '總覽', messages: '訊息', partners: '交換機關', access: '服務與權限', evidence: '存證',
  statistics: '統計', analysis: '分析', alerts: '警示', settings: '設定', audit: '稽核紀錄', users: '使用者',
  loading: '載入中…', missing: '未填', none: '沒有資料。', refused: '已拒絕', missingRoute: '此交換中心未提供本區所需的介面：',
  notAllowed: '您的角色無權使用此頁。',
  search: '查詢', next: '下一頁', first: '第一頁', filters: '篩選條件', id: '任一識別碼（訊息、會話、參考）',
  keyKind: '識別碼種類', any: '不限', partner: '機關', service: '服務', protocol: '協定', state: '狀態', since: '起', until: '迄',
  timeline: '時間軸', open: '開啟', evidenceLink: '存證',
  deadLetters: '無法投遞訊息', preview: '預覽重送', resend: '重送', reason: '原因（必填）', keepId: '沿用訊息識別碼', renewId: '產生新識別碼',
  filter: '篩選（JSON）', matched: '符合訊息數', resent: '已重送',
  add: '新增', edit: '編輯', save: '儲存', cancel: '取消', disable: '停用', enable: '啟用', remove: '移除', history: '異動紀錄',
  name: '名稱', certificates: '憑證（PEM）', sshKeys: 'SSH 金鑰', endpoints: '端點（JSON）', receive: '接收方式', enabled: '啟用中',
  partnerId: '機關代碼', saved: '已儲存。', addKey: '新增 SSH 金鑰', publicKey: '公開金鑰（OpenSSH）',
  testConnection: '測試連線', connectionTest: '連線測試（不傳送訊息）', outcome: '結果', reachable: '連線成功', unreachable: '連線失敗', testDetail: '說明', took: '毫秒',
  queryAccess: '查詢權限（表一）', topics: '情資通報主題（表二）', channels: '資料交換頻道（表三）', services: '服務',
  asker: '查詢', provider: '提供', notifier: '通報', receiver: '接收', requester: '訂閱',
  matrixHint: '選擇儲存格以變更機關的權限；變更會連同原因一併儲存。',
  messageId: '訊息識別碼', conversationId: '會話識別碼', from: '起', to: '迄', retrieve: '調閱', download: '下載存證包', verify: '驗證存證包',
  verdict: '驗證結果', valid: '有效', invalid: '無效',
  grain: '時間粒度', by: '分組', chart: '圖表', table: '表格', exportCsv: '匯出 CSV', traffic: '流量', trend: '趨勢', topTalkers: '主要交換機關',
  latency: '延遲', errors: '錯誤',
  sql: 'SQL（單一 SELECT）', run: '執行', saveAsPanel: '存為面板', panelName: '面板名稱', panels: '已存面板', show: '顯示方式',
  severity: '嚴重度', kind: '類別', subject: '對象', message: '訊息',
  runtime: '執行期設定', hubSettings: '交換中心目前設定', value: '值',
  verifyAudit: '驗證稽核鏈', roles: '角色', addUser: '新增使用者', disabled: '已停用',
  backlog: '待處理', breaker: '斷路器', stampingBacklog: '時戳待處理', disk: '資料磁碟可用空間', expiring: '憑證', days: '剩餘天數',
};

export type Language = 'zh-TW' | 'en';
const words: Record<Language, Record<Word, string>> = { en, 'zh-TW': zhTW };
const remembered = 'swx-console-language';

export function language(): Language {
  const chosen = localStorage.getItem(remembered);
  if (chosen === 'en' || chosen === 'zh-TW') return chosen;
  return document.documentElement.lang === 'en' ? 'en' : 'zh-TW';
}

export function chooseLanguage(chosen: Language): void {
  localStorage.setItem(remembered, chosen);
  document.documentElement.lang = chosen;
}

export function t(word: Word): string {
  return words[language()][word];
}
