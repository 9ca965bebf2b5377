"""The words of the pages (server/web/, server/templates/): English text as the key, its
zh-CN translation as the value. zh-CN is the default language.

A small catalogue in Python rather than Flask-Babel's compiled .mo files: the pages use a
few hundred words, a fresh clone needs no `pybabel compile` step before the pages speak
Chinese, and tests/web checks that every `_()` text in the code and templates has its
translation here. Values are filled in with %(name)s, after translation.
"""

from __future__ import annotations

from typing import Any

from server.web.admin_text import ADMIN_ZH

DEFAULT_LANGUAGE = "zh-CN"
LANGUAGES = ("zh-CN", "en")

ZH: dict[str, str] = {
    # frame
    "Zhuxun": "驻巡",
    "Review": "审核",
    "Summary": "汇总",
    "Sign in": "登录",
    "Sign out": "退出",
    "Home": "首页",
    "Username": "用户名",
    "Password": "密码",
    "Signed in as %(name)s.": "当前登录：%(name)s。",
    "For township reviewers and county admins. Doctors use the zhuxun-client app.": (
        "供乡镇审核人员和县级管理员使用。医生请使用 zhuxun-client 客户端。"
    ),
    "Enter your username.": "请输入用户名。",
    "Enter your password.": "请输入密码。",
    "Wrong username or password.": "用户名或密码错误。",
    "You have signed out.": "已退出登录。",
    "This page is for township reviewers and county admins.": (
        "此页面仅供乡镇审核人员和县级管理员使用。"
    ),
    # errors
    "Not found": "未找到",
    "Not allowed": "无权访问",
    "Please check the input": "请检查输入",
    "This cannot be done now": "当前状态下无法执行",
    "The form has expired": "表单已失效",
    "The form was not sent from this page's latest version. Go back, reload the page and "
    "send it again.": "表单不是从本页面的最新版本提交的。请返回、刷新页面后重新提交。",
    "Too many attempts": "尝试次数过多",
    "Too many sign-in attempts (%(limit)s). Wait a minute and try again.": (
        "登录尝试次数过多（%(limit)s）。请等一分钟后再试。"
    ),
    "Busy": "系统繁忙",
    "The database is busy or unavailable; nothing was changed. Try again shortly.": (
        "数据库繁忙或不可用，未做任何更改。请稍后再试。"
    ),
    "Something went wrong": "出错了",
    "An unexpected error; it has been logged.": "发生意外错误，已记录。",
    "Back to the week": "返回本周",
    # review list
    "Doctor-weeks to review": "待审核的医生周",
    "Each cell is one doctor's week: its review state, sessions logged and open flags. Open "
    "a cell to see the duty calendar and decide.": (
        "每格是一位医生的一周：审核状态、已记录的服务次数和未处理的预警。点开一格查看值班日历并审核。"
    ),
    "open flags": "未处理预警",
    "Earlier weeks": "更早的周",
    "Later weeks": "更晚的周",
    "No doctors in your area.": "您的辖区内没有医生。",
    "Doctor": "医生",
    "%(n)s sessions": "%(n)s 次",
    "Reopened after approval": "审核后被重新打开",
    "All doctor-weeks": "全部医生周",
    # one week
    "Approved by %(who)s at %(when)s.": "%(who)s 于 %(when)s 审核通过。",
    "Reason": "理由",
    "The week is locked: a later edit from a device reopens it, with the reason shown here.": (
        "本周已锁定：设备端之后的任何修改都会重新打开本周，并在此显示原因。"
    ),
    "Reopened at %(when)s": "于 %(when)s 重新打开",
    "Note (optional)": "备注（可选）",
    "Approve and lock this week": "审核通过并锁定本周",
    "Duty calendar": "值班日历",
    "%(sessions)s sessions, %(patients)s patients this week.": (
        "本周共 %(sessions)s 次服务，%(patients)s 人次。"
    ),
    "%(n)s open flags": "%(n)s 条未处理预警",
    "%(n)s patients": "%(n)s 人次",
    "Send back for correction": "退回修改",
    "What should the doctor correct?": "需要医生修改什么？",
    "Send back": "退回",
    "Place": "地点",
    "Sessions": "服务次数",
    "Patients": "诊疗人次",
    "Open flags": "未处理预警",
    "No open flags this week.": "本周没有未处理的预警。",
    "Excuse this flag": "免除此预警",
    "Excuse": "免除",
    "Leave and training": "请假与培训",
    "Leave": "请假",
    "Training": "培训",
    "Reason (needed to refuse)": "理由（不批准时必填）",
    "Approve leave": "批准请假",
    "Refuse leave": "不批准",
    "Duty days, recent weeks": "近几周值班天数",
    "Decisions on this week": "本周的审核记录",
    "No decisions yet.": "尚无审核记录。",
    "Before and after": "修改前后",
    "Week %(week)s approved and locked.": "%(week)s 已审核通过并锁定。",
    "The visit was sent back to the doctor with your comment.": "已将该服务记录连同意见退回医生。",
    "The flag was excused.": "预警已免除。",
    "Leave approved.": "已批准请假。",
    "Leave refused.": "已不批准请假。",
    # county summary
    "Month": "月份",
    "Township": "乡镇",
    "Whole county": "全县",
    "Charts show": "图表显示",
    "raw figures": "原始数据",
    "approved figures": "审核后数据",
    "Show": "查看",
    "Raw figures count every visit logged; approved figures count only the doctor-weeks a "
    "reviewer approved.": "原始数据统计所有已记录的服务；审核后数据只统计经审核通过的医生周。",
    "Download XLSX": "下载 XLSX",
    "Download CSV": "下载 CSV",
    "Townships": "乡镇",
    "raw": "原始",
    "Duty compliance": "在岗达标情况",
    "Village coverage": "村覆盖情况",
    "Compliance per weekly rule": "各周规则达标情况",
    "Flags per rule": "各规则预警",
    "Villages": "村",
    "Choose a township to see its villages here; the downloads hold every village.": (
        "选择一个乡镇即可在此查看其各村数据；下载文件包含全部村。"
    ),
    "covered": "已覆盖",
    "uncovered": "未覆盖",
    "not_required": "无需覆盖",
    "not_judged": "未评定",
    # words from the data
    "approved": "已审核",
    "reopened": "已重新打开",
    "unreviewed": "未审核",
    "pending": "待审批",
    "refused": "不批准",
    "posting": "派驻",
    "patrol": "巡诊",
    "sitin": "坐诊",
    "violation": "违规",
    "at_risk": "有风险",
    "week": "周",
    "visit": "服务记录",
    "flag": "预警",
    "leave": "请假",
    "week.approved": "审核通过本周",
    "week.reopened": "本周被重新打开",
    "visit.sent_back": "退回修改",
    "flag.excused": "免除预警",
    "leave.approved": "批准请假",
    "leave.refused": "不批准请假",
    "sent back": "已退回",
    "Mon": "周一",
    "Tue": "周二",
    "Wed": "周三",
    "Thu": "周四",
    "Fri": "周五",
    "Sat": "周六",
    "Sun": "周日",
}


ZH.update(ADMIN_ZH)  # the county-running pages (issue 15)


def translate(text: str, lang: str, **values: Any) -> str:
    """`text` in `lang`, its %(name)s places filled; an unknown text stays English."""
    if lang != "en":
        text = ZH.get(text, text)
    return text % values if values else text
