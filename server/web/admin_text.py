"""The words of the county-running pages (server/web/admin.py and its templates), English
as the key and zh-CN as the value; server/web/text.py takes them into its catalogue."""

from __future__ import annotations

ADMIN_ZH: dict[str, str] = {
    # users and devices
    "Users and devices": "用户与设备",
    "Every account of your county. Open one to reset its password, change its role or "
    "revoke a device.": "本县的全部账号。点开一个账号可重置密码、更改角色或停用设备。",
    "The doctor accounts of your township. Open one to reset its password or revoke a "
    "device.": "本乡镇医生的账号。点开一个账号可重置密码或停用设备。",
    "Account %(name)s created.": "账号 %(name)s 已创建。",
    "One-time password (shown once; the user must change it at the first sign-in):": (
        "一次性密码（仅显示一次；用户首次登录时必须修改）："
    ),
    "Role": "角色",
    "Unit": "单位",
    "State": "状态",
    "active": "正常",
    "deactivated": "已停用",
    "must change password": "须修改密码",
    "No accounts yet.": "还没有账号。",
    "New account": "新建账号",
    "Doctor id (for a doctor)": "医生编号（医生账号填写）",
    "Unit code (a reviewer's township, an admin's county)": (
        "单位编码（审核员填乡镇，管理员填县）"
    ),
    "Create the account": "创建账号",
    "Account": "账号",
    "Reset the password": "重置密码",
    "Deactivate": "停用账号",
    "Reactivate": "重新启用",
    "Change role and unit": "更改角色和单位",
    "The account was deactivated.": "账号已停用。",
    "The account was reactivated.": "账号已重新启用。",
    "The role and unit were changed.": "角色和单位已更改。",
    "Devices": "设备",
    "Device": "设备",
    "App version": "客户端版本",
    "First sync": "首次同步",
    "Last push": "最近上传",
    "Last pull": "最近下载",
    "Rejected, waiting": "被拒待改",
    "Revoke": "停用设备",
    "Reason (optional)": "原因（可选）",
    "revoked": "已停用",
    "revoked by %(who)s at %(when)s": "已由 %(who)s 于 %(when)s 停用",
    "Device %(device)s was revoked.": "设备 %(device)s 已停用。",
    "No device has synced with this account yet.": "此账号还没有设备同步过。",
    "A revoked device's tokens stop working at once and its next sync is refused; the "
    "records it sent already stay.": "停用后，该设备的登录凭证立即失效，下次同步将被拒绝；已上传的记录保留。",
    "History": "操作记录",
    "doctor": "医生",
    "township_reviewer": "乡镇审核员",
    "county_admin": "县级管理员",
    "user.created": "创建账号",
    "user.changed": "更改角色或单位",
    "user.deactivated": "停用账号",
    "user.activated": "重新启用账号",
    "user.password_reset": "重置密码",
    "user.password_changed": "修改密码",
    "device.revoked": "停用设备",
    "import.applied": "表格导入",
    # sync health
    "Sync health": "同步状况",
    "Each doctor's devices and last successful sync. A doctor silent for more than "
    "%(n)s days has not synced: a week without visits from them is not yet a week off "
    "duty.": "每位医生的设备和最近一次成功同步。超过 %(n)s 天未同步的医生列在前面：没有记录的一周，可能只是尚未同步，不一定是未在岗。",
    "Silent for more than (days)": "未同步超过（天）",
    "Show": "显示",
    "%(n)s doctors silent": "%(n)s 位医生未同步",
    "%(n)s open conflicts": "%(n)s 个未处理冲突",
    "%(n)s devices with rejected records waiting": "%(n)s 台设备有被拒待改的记录",
    "Last sync": "最近同步",
    "%(n)s days ago": "%(n)s 天前",
    "never": "从未同步",
    "Open conflicts": "未处理冲突",
    # import
    "Import from a spreadsheet": "从表格导入",
    "Places, doctors, assignments and users from CSV or XLSX files. Check first: nothing "
    "is written until the check finds no problem, and then everything is written or "
    "nothing. Rows are matched by their code, so importing the same file again changes "
    "nothing.": "从 CSV 或 XLSX 文件导入地点、医生、任务和用户。请先检查：检查没有问题之前不会写入任何数据；导入时要么全部写入，要么全部不写。各行按编码匹配，同一文件重复导入不会改变任何数据。",
    "Templates:": "模板：",
    "this county as it is (XLSX)": "本县现有数据（XLSX）",
    "Files": "文件",
    "Check (dry run)": "检查（不写入）",
    "Import": "导入",
    "Problems: nothing was imported": "发现问题：未导入任何数据",
    "Sheet": "表",
    "Row": "行",
    "Column": "列",
    "Problem": "问题",
    "Imported.": "已导入。",
    "No problems found. Press Import to write it.": "未发现问题。点击“导入”写入数据。",
    "new": "新增",
    "changed": "更改",
    "unchanged": "不变",
    "places": "地点",
    "doctors": "医生",
    "assignments": "任务",
    "users": "用户",
    "One-time passwords of the new accounts": "新账号的一次性密码",
    "Shown once. Each user must change theirs at the first sign-in.": (
        "仅显示一次。每位用户首次登录时必须修改。"
    ),
    # one's own password
    "Change your password": "修改密码",
    "You signed in with a one-time password. Choose your own before you go on.": (
        "您使用一次性密码登录。请先设置自己的密码再继续。"
    ),
    "Current password": "当前密码",
    "New password (at least 8 characters)": "新密码（至少 8 个字符）",
    "New password again": "再次输入新密码",
    "Change the password": "修改密码",
    "The two new passwords differ.": "两次输入的新密码不一致。",
    "That is not your current password.": "当前密码不正确。",
    "Choose a new password of at least 8 characters, not the current one.": (
        "请设置至少 8 个字符、且与当前密码不同的新密码。"
    ),
    "Your password was changed.": "密码已修改。",
    "Password changed": "密码已修改",
    "Your new password is set. Sign in with it on your tablet: zhuxun-client login.": (
        "新密码已设置。请在平板上用新密码登录：zhuxun-client login。"
    ),
}
