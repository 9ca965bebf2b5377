// The app's words in zh-CN (the default) and English. Field labels and form titles are not
// here: they come with the form definitions from the server.
const TEXT = {
  zh: {
    app: '驻巡', signIn: '登录', username: '用户名', password: '密码', signOut: '退出',
    needNetwork: '首次登录需要网络', badLogin: '用户名或密码错误',
    checkIn: '到岗签到', checkOut: '离岗签退', assignment: '任务', place: '地点', patients: '诊疗人次', notes: '备注',
    inProgress: '进行中的巡诊', since: '签到于', position: '定位', noPosition: '无定位', positionDenied: '未获定位（已拒绝）',
    positionUnavailable: '未获定位（不可用）', positionTimeout: '未获定位（超时）', accuracy: '精度',
    visits: '巡诊记录', addVisit: '补录巡诊', leave: '请假', addLeave: '申请请假', save: '保存', cancel: '取消', delete: '删除',
    edit: '修改', deleteConfirm: '删除这条记录？', thisWeek: '本周在岗情况', noPlan: '同步后显示本周要求',
    dutyDays: '在岗日', sessions: '半天巡诊', required: '要求', ok: '达标', at_risk: '有风险：本周可能无法达标', violation: '未达标',
    sync: '同步', syncing: '正在同步…', synced: '已同步', pendingN: '{n} 条待同步', lastSync: '上次同步', never: '从未',
    offline: '离线：恢复网络后自动同步', waiting: '同步失败，{s} 秒后重试', stopped: '同步停止：{e}', signed_out: '登录已失效，请重新登录',
    state_pending: '待同步', state_in_flight: '发送中', state_synced: '已同步', state_rejected: '被退回（无效）', state_conflict: '冲突',
    state_sent_back: '审核退回', reason: '原因', comment: '审核意见', mine: '我的版本', theirs: '服务器版本',
    keepMine: '保留我的', keepTheirs: '保留服务器的', storage: '本地存储', storageOpfs: 'SQLite（OPFS，持久）',
    storageIdb: 'SQLite 保存在 IndexedDB（此浏览器不支持 OPFS）', persisted: '持久存储：已获准', notPersisted: '持久存储：浏览器未允许，空间不足时数据可能被清除，请尽快同步',
    updateReady: '新版本已就绪，签退后自动更新', language: 'English', start: '开始日期', end: '结束日期', status: '状态',
    deleted: '已删除', kind_posting: '驻村', kind_patrol: '巡诊', kind_sitin: '坐诊', none: '（无）', time: '时间',
    err_required: '必填', err_id: '只能含字母、数字和 _ . : -', err_integer: '请填整数', err_number: '请填数字',
    err_datetime: '时间格式不对', err_date: '日期格式不对', err_choice: '请选择：{choices}', err_text: '请填文字',
    err_max_length: '最多 {max} 个字', err_minimum: '不能小于 {min}', err_maximum: '不能大于 {max}',
    err_after: '必须晚于到岗时间', err_max_hours: '一次巡诊最长 {hours} 小时', err_future: '时间在未来，请检查设备时间',
    err_not_before: '不能早于开始日期', saved: '已保存', withoutPosition: '无定位保存',
    busy: '本地数据库正被另一个标签页使用：请关闭其他驻巡页面后重新打开。',
  },
  en: {
    app: 'Zhuxun', signIn: 'Sign in', username: 'Username', password: 'Password', signOut: 'Sign out',
    needNetwork: 'The first sign-in needs a network', badLogin: 'Wrong username or password',
    checkIn: 'Check in', checkOut: 'Check out', assignment: 'Assignment', place: 'Place', patients: 'Patients seen', notes: 'Notes',
    inProgress: 'Visit in progress', since: 'Checked in', position: 'Position', noPosition: 'No position', positionDenied: 'No position (denied)',
    positionUnavailable: 'No position (unavailable)', positionTimeout: 'No position (timed out)', accuracy: 'accuracy',
    visits: 'Visits', addVisit: 'Enter a past visit', leave: 'Leave', addLeave: 'Request leave', save: 'Save', cancel: 'Cancel', delete: 'Delete',
    edit: 'Edit', deleteConfirm: 'Delete this record?', thisWeek: "This week's duty", noPlan: "Sync to see this week's requirement",
    dutyDays: 'duty days', sessions: 'half-day sessions', required: 'required', ok: 'On track', at_risk: 'At risk: the week may be lost', violation: 'Not met',
    sync: 'Sync', syncing: 'Syncing…', synced: 'Synced', pendingN: '{n} waiting to sync', lastSync: 'Last sync', never: 'never',
    offline: 'Offline: syncs by itself when the network returns', waiting: 'Sync failed, retrying in {s} s', stopped: 'Sync stopped: {e}', signed_out: 'Signed out: sign in again',
    state_pending: 'Pending', state_in_flight: 'Sending', state_synced: 'Synced', state_rejected: 'Rejected', state_conflict: 'Conflict',
    state_sent_back: 'Sent back', reason: 'Reason', comment: "Reviewer's comment", mine: 'Mine', theirs: "Server's",
    keepMine: 'Keep mine', keepTheirs: "Keep the server's", storage: 'Storage', storageOpfs: 'SQLite (OPFS, durable)',
    storageIdb: 'SQLite saved in IndexedDB (no OPFS in this browser)', persisted: 'Persistent storage: granted', notPersisted: 'Persistent storage: refused — the browser may clear data when space is short; sync soon',
    updateReady: 'A new version is ready; it applies after check-out', language: '中文', start: 'Start', end: 'End', status: 'Status',
    deleted: 'Deleted', kind_posting: 'Posting', kind_patrol: 'Patrol', kind_sitin: 'Sit-in', none: '(none)', time: 'Time',
    err_required: 'Required', err_id: 'Letters, digits and _ . : - only', err_integer: 'A whole number', err_number: 'A number',
    err_datetime: 'Not a valid time', err_date: 'Not a valid date', err_choice: 'Choose one of: {choices}', err_text: 'Text',
    err_max_length: 'At most {max} characters', err_minimum: 'At least {min}', err_maximum: 'At most {max}',
    err_after: 'Must be after the check-in', err_max_hours: 'A visit lasts at most {hours} hours', err_future: "In the future: check the device's date and time",
    err_not_before: 'Must be on or after the start', saved: 'Saved', withoutPosition: 'Saved without a position',
    busy: 'The local database is in use by another tab: close the other Zhuxun tabs and open this one again.',
  },
};

let lang = 'zh';

export function setLanguage(code) {
  lang = code === 'en' ? 'en' : 'zh';
  return lang;
}

export function language() {
  return lang;
}

export function t(key, params = {}) {
  const text = TEXT[lang][key] ?? TEXT.zh[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(params[name] ?? ''));
}

/** A label from the server's definitions ({zh, en}). */
export function label(pair) {
  return pair ? pair[lang] || pair.zh : '';
}

export function errorText(error) {
  return t(`err_${error.code}`, error.params || {});
}
