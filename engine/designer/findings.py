"""Lint findings as the designer page shows them: a stable code and a Chinese message.

The linter (``engine.bpmn.lint``) speaks English for the CLI; rules added for the designer set
their own code, the older ones are recognised by their wording here. The Chinese title leads,
the linter's detail follows so element names and values stay visible.
"""

from __future__ import annotations

import re
from typing import Any

from engine.bpmn.lint import Finding

# (pattern on the English message, code, Chinese title); first match wins
_RULES: list[tuple[re.Pattern[str], str, str]] = [(re.compile(p), c, t) for p, c, t in [
    (r"DOCTYPE|entity declarations", "doctype_forbidden", "不允许 DOCTYPE 或实体声明"),
    (r"not well-formed XML|cannot be read as XML|file is empty", "not_xml", "不是格式正确的 XML"),
    (r"not a BPMN or DMN document|no BPMN or DMN file", "not_bpmn_or_dmn", "不是 BPMN 或 DMN 文档"),
    (r"larger than", "model_too_large", "模型文件过大"),
    (r"is not a known department", "lane_unknown_department", "泳道名称不是已知部门"),
    (r"lane has no name", "lane_unnamed", "泳道没有名称，请以部门代码命名"),
    (r"is not in any lane", "task_without_lane", "人工任务不在任何泳道中（无法分派到部门）"),
    (r"^form '.*' named by", "form_missing", "任务引用的表单文件不存在"),
    (r"^form forms/", "form_invalid", "表单文件不是有效的 JSON Schema"),
    (r"timer has no time", "timer_missing_value", "定时器缺少时间设置"),
    (r"^time(Date|Duration|Cycle) '.*' (is not|is not a valid)", "timer_invalid", "定时器的值无法解析"),
    (r"without a condition and is not its default", "gateway_flow_without_condition",
     "网关的出口既没有条件也不是默认流"),
    (r"gateway has no default flow", "gateway_without_default", "网关没有默认流，所有条件都不成立时办件会出错"),
    (r"default flow '.*' is not an outgoing", "gateway_default_invalid", "网关的默认流不是它的出口"),
    (r"process has no start event|needs exactly one start event", "start_event_missing", "缺少开始事件"),
    (r"has no id; SpiffWorkflow silently drops", "flow_without_id", "顺序流没有 id"),
    (r"(sourceRef|targetRef) '.*' is not an element|sequence flow has no", "flow_dangling",
     "顺序流连接的元素不存在"),
    (r"script task has no script", "script_missing", "脚本任务没有脚本"),
    (r"call activity|called process", "call_activity_invalid", "调用活动引用的流程无效"),
    (r"decision '.*' is not in the bundle|names no decision", "decision_missing", "业务规则任务引用的决策表不存在"),
    (r"does not match any bpmn:", "event_ref_invalid", "事件引用的消息/信号/错误未定义"),
    (r"no executable process", "no_executable_process", "没有可执行的流程（isExecutable=\"true\"）"),
    (r"is also defined in", "duplicate_id", "标识重复"),
    (r"is empty$", "expression_empty", "表达式或脚本为空"),
    (r"syntax error", "script_syntax_error", "脚本或表达式有语法错误（须为 Python）"),
    (r"^(script|pre-script|post-script|condition|loop cardinality|completion condition|loop condition|"
     r"correlation expression|message payload|signal payload|parameter|input expression|input entry|"
     r"output entry|time(Date|Duration|Cycle) expression)", "sandbox_violation", "脚本或表达式违反安全规则"),
    (r"decision|rule has|input entry|decision table", "dmn_invalid", "决策表（DMN）无效"),
]]
_TITLES = {
    "foreign_expression": "使用了 Camunda/Flowable 的 ${...} 表达式，请改写为 Python",
    "foreign_script_language": "脚本语言不是 Python（本平台只运行 Python 脚本）",
    "no_path_to_end": "从此元素出发无法到达结束（出口缺失或死循环）",
    "unreachable_element": "从开始事件无法到达此元素",
    "connector_not_allowed": "调用了本事项未授权的接口（item.yaml 的 policy.connectors）",
    "certificate_type_not_allowed": "签发了本事项未授权的证照类型（item.yaml 的 policy.certificate_types）",
}
SANDBOX_CODES = {"sandbox_violation"}


def classify(finding: Finding) -> tuple[str, str]:
    """(code, Chinese title) of a finding."""
    if finding.code:
        return finding.code, _TITLES.get(finding.code, "流程模型有误")
    for pattern, code, title in _RULES:
        if pattern.search(finding.message):
            return code, title
    return "model_invalid", "流程模型无效"


def to_dict(finding: Finding) -> dict[str, Any]:
    """The finding as the validate endpoint answers it."""
    code, title = classify(finding)
    return {"code": code, "message": f"{title}：{finding.message}", "element_id": finding.element_id,
            "line": finding.line, "file": finding.file, "severity": finding.severity}


__all__ = ["SANDBOX_CODES", "classify", "to_dict"]
