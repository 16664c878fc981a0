"""The per-file rules of the model linter (see ``engine.bpmn.lint``).

``BpmnRules`` checks one BPMN document, ``DmnRules`` one DMN document; both report through a
``Sink`` so the rules stay free of report bookkeeping.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Mapping

from lxml import etree

from engine.bpmn import habits, lint_paths
from engine.bpmn.conventions import APPLICANT_LANES
from engine.bpmn.parser import BPMN_NS
from engine.bpmn.sandbox import check_expression, check_script
from engine.bpmn.timers import is_bare_iso, timer_problem

B = f"{{{BPMN_NS}}}"
S = "{http://spiffworkflow.org/bpmn/schema/1.0/core}"
FORM_PROPERTIES = ("formJsonSchemaFilename", "formUiSchemaFilename")
ASSIGNMENT_DISTINCT, ASSIGNMENT_RECUSE = "distinctSigners", "recuseFrom"  # engine.workbench.assignment
LANED_TASKS = (f"{B}userTask", f"{B}manualTask")
SUBPROCESSES = (f"{B}subProcess", f"{B}transaction", f"{B}adHocSubProcess")
EXPRESSIONS = {
    f"{B}conditionExpression": "condition", f"{B}condition": "condition",
    f"{B}loopCardinality": "loop cardinality", f"{B}completionCondition": "completion condition",
    f"{B}loopCondition": "loop condition", f"{B}messagePath": "correlation expression",
    f"{S}messagePayload": "message payload", f"{S}payloadExpression": "signal payload",
}
SCRIPTS = {f"{B}script": "script", f"{S}preScript": "pre-script", f"{S}postScript": "post-script"}
EVENT_REFS = (("errorEventDefinition", "errorRef", "error"),
              ("messageEventDefinition", "messageRef", "message"),
              ("signalEventDefinition", "signalRef", "signal"),
              ("escalationEventDefinition", "escalationRef", "escalation"),
              ("sendTask", "messageRef", "message"), ("receiveTask", "messageRef", "message"))
# The DMN engine replaces a '?' outside quotes with this name (DMNEngine.evaluate).
DMN_INPUT_NAME = "dmninputexpr"
_QUESTION_MARK = re.compile(r'(\?)(?=(?:[^\'"]|[\'"][^\'"]*[\'"])*$)')


class Sink:
    """Where rules report; implemented by the linter."""

    def add(self, severity: str, file: str, line: int | None, element_id: str | None, message: str,
            code: str = "") -> None:
        raise NotImplementedError

    def form_problem(self, key: str) -> str | None:
        raise NotImplementedError


def local(el: etree._Element) -> str:
    return etree.QName(el).localname


def owner_id(el: etree._Element | None) -> str | None:
    """Id of the element itself or of its nearest ancestor that has one.

    Only BPMN/DMN elements count (a spiffworkflow:parameter's id is a parameter name), and
    event definitions are skipped in favour of their event, which is what modelers show.
    """
    model_ns = etree.QName(el.getroottree().getroot()).namespace if el is not None else None
    while el is not None:
        parent = el.getparent()
        skip = (etree.QName(el).namespace != model_ns
                or (local(el).endswith("EventDefinition") and parent is not None and parent.get("id")))
        if el.get("id") and not skip:
            return el.get("id")
        el = parent
    return None


class _Rules:
    def __init__(self, sink: Sink, file: str, root: etree._Element) -> None:
        self.sink, self.file, self.root = sink, file, root

    def error(self, el: etree._Element | None, message: str, element_id: str | None = None,
              code: str = "") -> None:
        line = el.sourceline if el is not None else None
        self.sink.add("error", self.file, line, element_id or owner_id(el), message, code)

    def warning(self, el: etree._Element | None, message: str, element_id: str | None = None,
                code: str = "") -> None:
        self.sink.add("warning", self.file, el.sourceline if el is not None else None,
                      element_id or owner_id(el), message, code)

    def check_code(self, el: etree._Element, source: str | None, label: str, *, script: bool = False,
                   in_text: bool = True) -> bool:
        """Sandbox-check ``source`` (True when clean); a violation's line is mapped onto the XML line."""
        if source is None or not source.strip():
            self.error(el, f"{label} is empty")
            return False
        foreign = habits.foreign_expression(source)
        if foreign is not None:  # Camunda/Flowable ${...}: say what to write instead
            self.error(el, f"{label} uses a ${{...}} expression; write Python instead: {foreign}",
                       code="foreign_expression")
            return False
        checker: Callable[[str], list] = check_script if script else check_expression
        try:
            violations = checker(source)
        except Exception as exc:  # e.g. RecursionError on absurdly nested code
            self.error(el, f"{label} cannot be checked ({exc.__class__.__name__})")
            return False
        multi = "\n" in source.strip()
        # check_expression strips the source, so its line 1 is the first non-blank line
        skipped = 0 if script else source[:len(source) - len(source.lstrip())].count("\n")
        for v in violations:
            line = el.sourceline
            if in_text and line and v.line:
                line += skipped + v.line - 1
            where = f"{label} line {v.line}" if multi else label
            self.sink.add("error", self.file, line, owner_id(el), f"{where}: {v.message}")
        return not violations


class BpmnRules(_Rules):
    """Structural, house and sandbox rules for one BPMN document."""

    def __init__(self, sink: Sink, file: str, root: etree._Element, process_ids: Mapping[str, bool],
                 decision_ids: set[str], departments: Mapping[str, str] | None) -> None:
        super().__init__(sink, file, root)
        self.process_ids, self.decision_ids = process_ids, decision_ids
        # the applicant lane (补正) is no department, but the SLA clock pauses on it: always known
        self.known_lanes = None if departments is None else (
            {str(k).strip() for k in departments} | {str(v).strip() for v in departments.values()}
            | set(APPLICANT_LANES))

    @staticmethod
    def processes(root: etree._Element) -> list[etree._Element]:
        return root.findall(f"{B}process")

    def run(self) -> None:
        processes = self.processes(self.root)
        if not processes:
            self.error(self.root, "no bpmn:process in the file")
        for proc in processes:
            self._lanes(proc)
            for container in [proc, *proc.iter(*SUBPROCESSES)]:
                self._container(container)
        self._code()
        self._timers()
        self._forms()
        self._assignment_rules()
        self._references()
        self._messages()
        for proc in processes:
            lint_paths.check(self, proc)

    def _lanes(self, proc: etree._Element) -> None:
        laned: set[str] = set()
        for lane in proc.iter(f"{B}lane"):
            refs = [(r.text or "").strip() for r in lane.findall(f"{B}flowNodeRef")]
            laned.update(refs)
            if not refs:
                continue
            name = (lane.get("name") or "").strip()
            if not name:
                self.error(lane, "lane has no name; name it after a department code")
            elif self.known_lanes is not None and name not in self.known_lanes:
                self.error(lane, f"lane '{name}' is not a known department code or name")
        for task in proc.iter(*LANED_TASKS):
            chain = [task, *(a for a in task.iterancestors() if a.tag in SUBPROCESSES)]
            if not any(el.get("id") in laned for el in chain):
                kind = "user task" if local(task) == "userTask" else "manual task"
                self.error(task, f"{kind} is not in any lane (laneSet/lane/flowNodeRef)")

    def _container(self, container: etree._Element) -> None:
        children = [c for c in container if isinstance(c.tag, str)]
        flows = [c for c in children if c.tag == f"{B}sequenceFlow"]
        node_ids = {c.get("id") for c in children if c.get("id") and c.tag != f"{B}sequenceFlow"}
        starts = [c for c in children if c.tag == f"{B}startEvent"]
        kind = local(container)
        if kind == "process" and not starts and container.get("isExecutable", "true") == "true":
            self.error(container, "process has no start event")
        elif kind in ("subProcess", "transaction") and len(starts) != 1:
            self.error(container, f"embedded subprocess needs exactly one start event (found {len(starts)})")
        for flow in flows:
            src, tgt = flow.get("sourceRef"), flow.get("targetRef")
            if not flow.get("id"):
                self.error(flow, f"sequence flow {src} -> {tgt} has no id; SpiffWorkflow silently drops "
                                 "such flows, so the case would stop early", element_id=owner_id(container))
            for attr, ref in (("sourceRef", src), ("targetRef", tgt)):
                if ref not in node_ids:
                    self.error(flow, f"{attr} '{ref}' is not an element of this process"
                               if ref else f"sequence flow has no {attr}")
        for gw in children:
            if local(gw) in ("exclusiveGateway", "inclusiveGateway"):
                self._gateway(gw, [f for f in flows if f.get("sourceRef") == gw.get("id")])

    def _gateway(self, gw: etree._Element, outgoing: list[etree._Element]) -> None:
        default = gw.get("default")
        if default and default not in {f.get("id") for f in outgoing}:
            self.error(gw, f"default flow '{default}' is not an outgoing flow of this gateway")
        if len(outgoing) < 2:
            return
        for flow in outgoing:
            cond = flow.find(f"{B}conditionExpression")
            if (cond is None or cond.text is None) and flow.get("id") != default:
                self.error(flow, "flow leaves a gateway without a condition and is not its default "
                                 "(SpiffWorkflow rejects this)", element_id=flow.get("id") or gw.get("id"))
        if not default:
            self.warning(gw, "gateway has no default flow; a case stops with an error when no "
                             "condition holds")

    def _code(self) -> None:
        for el in self.root.iter(etree.Element):
            tag = el.tag
            if tag in SCRIPTS:
                language = habits.foreign_language(el.getparent().get("scriptFormat"))
                if tag == f"{B}script" and language:
                    self.error(el, f"script is written in {language}; the engine runs Python only. Write: "
                                   f"{habits.python_script(el.text or '')}", code="foreign_script_language")
                    continue
                self.check_code(el, el.text, SCRIPTS[tag], script=True)
            elif tag == f"{B}conditionExpression" and el.text is None:
                continue  # an empty condition means "no condition" to the parser
            elif tag in EXPRESSIONS or (tag == f"{B}formalExpression" and local(el.getparent())
                                        == "correlationPropertyRetrievalExpression"):
                self.check_code(el, el.text, EXPRESSIONS.get(tag, "correlation expression"))
            elif tag == f"{S}expression" and local(el.getparent()) == "processVariableCorrelation":
                self.check_code(el, el.text, "correlation expression")
            elif tag == f"{S}parameter" and el.get("value") is not None:
                self.check_code(el, el.get("value"), f"parameter '{el.get('id')}'", in_text=False)
            elif tag == f"{B}scriptTask" and el.find(f"{B}script") is None:
                self.error(el, "script task has no script")

    def _timers(self) -> None:
        for timer in self.root.iter(f"{B}timerEventDefinition"):
            spec = next((timer.find(f".//{B}{k}") for k in ("timeDate", "timeDuration", "timeCycle")
                         if timer.find(f".//{B}{k}") is not None), None)
            if spec is None:
                self.error(timer, "timer has no timeDate, timeDuration or timeCycle")
                continue
            kind = local(spec)
            text = (spec.text or "").strip()
            if is_bare_iso(kind, text):
                continue  # Camunda-style bare ISO 8601 value: quoted when the model is parsed
            self.check_code(spec, spec.text, f"{kind} expression")
            if not text:
                continue
            try:
                tree = ast.parse(text, mode="eval").body
            except (SyntaxError, ValueError, RecursionError, MemoryError):
                continue  # the sandbox check already reported it
            if isinstance(tree, ast.Constant) and isinstance(tree.value, str):
                problem = timer_problem(kind, tree.value)
                if problem:
                    self.error(spec, f"{kind} '{tree.value}' {problem}")

    def _forms(self) -> None:
        for prop in self.root.iter(f"{S}property"):
            if prop.get("name") not in FORM_PROPERTIES:
                continue
            name = (prop.get("value") or "").strip()
            key = name if name.startswith("forms/") else f"forms/{name}"
            problem = self.sink.form_problem(key) if name else "missing"
            if problem == "missing":
                self.error(prop, f"form '{name}' named by {prop.get('name')} is not in the bundle "
                                 f"(expected {key})")
            elif problem and prop.get("name") == "formJsonSchemaFilename":
                self.error(prop, f"form {key} {problem}")

    def _assignment_rules(self) -> None:
        """distinctSigners (会签: each instance a different person) and recuseFrom (回避: not whoever
        did the named earlier steps) — engine.workbench.assignment enforces them."""
        for proc in self.processes(self.root):
            human = {t.get("id") for t in proc.iter(*LANED_TASKS)}
            for task in proc.iter(*LANED_TASKS):
                props = {p.get("name"): (p.get("value") or "").strip()
                         for p in task.findall(f"{B}extensionElements/{S}properties/{S}property")}
                multi = task.find(f"{B}multiInstanceLoopCharacteristics") is not None
                distinct = props.get(ASSIGNMENT_DISTINCT)
                if distinct is not None and distinct.lower() not in ("true", "false"):
                    self.error(task, f"{ASSIGNMENT_DISTINCT} is '{distinct}'; write true or false",
                               code="assignment_rule")
                elif distinct is not None and distinct.lower() == "true" and not multi:
                    self.error(task, f"{ASSIGNMENT_DISTINCT} applies to a multi-instance (会签) user task only",
                               code="assignment_rule")
                elif distinct is None and multi and local(task) == "userTask":
                    self.warning(task, f"会签 (multi-instance user task) does not say whether each instance needs "
                                       f"a different person: add the property {ASSIGNMENT_DISTINCT} = true "
                                       "(or false)", code="assignment_rule")
                for step in [s.strip() for s in props.get(ASSIGNMENT_RECUSE, "").replace("，", ",").split(",")
                             if s.strip()]:
                    if step == task.get("id"):
                        self.error(task, f"{ASSIGNMENT_RECUSE} names the task itself ('{step}')",
                                   code="assignment_rule")
                    elif step not in human:
                        self.error(task, f"{ASSIGNMENT_RECUSE} names '{step}', which is no user or manual task "
                                         "of this process", code="assignment_rule")

    def _references(self) -> None:
        for call in self.root.iter(f"{B}callActivity"):
            called = call.get("calledElement")
            if not called:
                self.error(call, "call activity has no calledElement")
            elif called not in self.process_ids:
                self.error(call, f"called process '{called}' is not in the bundle")
            elif not self.process_ids[called]:
                self.error(call, f"called process '{called}' is not executable")
        for task in self.root.iter(f"{B}businessRuleTask"):
            ref = task.find(f"{B}extensionElements/{S}calledDecisionId")
            decision = (ref.text or "").strip() if ref is not None else ""
            if not decision:
                self.error(task, "business rule task names no decision (spiffworkflow:calledDecisionId)")
            elif decision not in self.decision_ids:
                self.error(task, f"decision '{decision}' is not in the bundle")
        for holder, attr, target in EVENT_REFS:
            defined = {el.get("id") for el in self.root.iter(f"{B}{target}")}
            for el in self.root.iter(f"{B}{holder}"):
                ref = el.get(attr)
                if ref and ref not in defined:
                    self.error(el, f"{attr} '{ref}' does not match any bpmn:{target} in this file")

    def _messages(self) -> None:
        """Correlation mistakes of BPMN messages between cases (engine.kernel.messages), in Chinese:
        the people who model processes read them in the designer."""
        messages = {el.get("id"): el for el in self.root.iter(f"{B}message") if el.get("id")}
        if not messages:
            return
        properties: dict[str, set[str]] = {}  # message id -> correlation properties it carries
        for prop in self.root.iter(f"{B}correlationProperty"):
            for expr in prop.iter(f"{B}correlationPropertyRetrievalExpression"):
                if expr.get("messageRef"):
                    properties.setdefault(expr.get("messageRef"), set()).add(prop.get("id") or "")
        catches: list[tuple[etree._Element, str]] = []
        thrown: set[str] = set()
        for definition in self.root.iter(f"{B}messageEventDefinition"):
            ref, event = definition.get("messageRef"), definition.getparent()
            if not ref:
                continue
            if local(event) in ("intermediateThrowEvent", "endEvent"):
                thrown.add(ref)
            else:
                catches.append((definition, ref))
        for task in self.root.iter(f"{B}sendTask"):
            if task.get("messageRef"):
                thrown.add(task.get("messageRef"))
        for task in self.root.iter(f"{B}receiveTask"):
            if task.get("messageRef"):
                catches.append((task, task.get("messageRef")))
        for ref, message in messages.items():
            name = message.get("name") or ref
            if (ref in thrown or any(r == ref for _, r in catches)) and not properties.get(ref):
                self.warning(message, f"消息「{name}」没有关联属性（bpmn:correlationProperty 及其对该消息的 "
                                      "correlationPropertyRetrievalExpression）：每个等待它的办件都会收到同一条消息；"
                                      "请按统一社会信用代码、办件号等关联到具体办件", code="message_no_correlation")
        for el, ref in catches:
            message = messages.get(ref)
            if message is None:
                continue  # reported by _references
            name, carried = message.get("name") or ref, properties.get(ref, set())
            set_here = {(p.findtext(f"{S}propertyId") or "").strip()
                        for p in el.iter(f"{S}processVariableCorrelation")}
            for prop in sorted(set_here - carried):
                self.error(el, f"等待消息「{name}」时设置的关联属性「{prop}」不是该消息的关联属性"
                               f"（该消息的关联属性：{'、'.join(sorted(carried)) or '无'}），消息永远无法投递到此办件",
                           code="message_unknown_correlation")
            starts = local(el.getparent()) == "startEvent"  # a new case: nothing to correlate yet
            if carried and not set_here & carried and not starts:
                self.error(el, f"等待消息「{name}」的事件没有设置关联值：请在其消息定义中用 "
                               "spiffworkflow:processVariableCorrelation 从办件数据取值（如 registration['uscc']）；"
                               "关联键从未被设置，带关联值的消息找不到此办件", code="message_correlation_never_set")
            if ref not in thrown and not _message_sender(message):
                self.warning(el, f"消息「{name}」在本文件中没有发送方，也未注明来自其他流程或外部系统：若由其他流程"
                                 "或外部系统（POST /api/v1/messages）发送，请在 bpmn:message 上注明 spiffworkflow:property "
                                 "sender（发送流程 ID 或 external）；否则办件会一直等待", code="message_no_sender")


def _message_sender(message: etree._Element) -> str:
    """Who sends a message a process only receives (``spiffworkflow:property name="sender"``)."""
    for prop in message.iter(f"{S}property"):
        if prop.get("name") == "sender":
            return (prop.get("value") or "").strip()
    return ""


class DmnRules(_Rules):
    """Spiff's one-decision-table limits and sandbox checks for one DMN document."""

    @staticmethod
    def decisions(root: etree._Element) -> list[etree._Element]:
        return [el for el in root if isinstance(el.tag, str) and local(el) == "decision"]

    def run(self) -> None:
        decisions = self.decisions(self.root)
        if not decisions:
            self.error(self.root, "no decision in the file")
        elif len(decisions) > 1:
            self.error(decisions[1], f"{len(decisions)} decisions in one file; SpiffWorkflow reads exactly "
                                     "one decision per DMN file")
        for decision in decisions:
            if not decision.get("id"):
                self.error(decision, "decision has no id")
            tables = [el for el in decision if isinstance(el.tag, str) and local(el) == "decisionTable"]
            if not tables:
                self.error(decision, "decision has no decision table (only decision tables are supported)")
            for table in tables:
                self._table(table)

    def _children(self, el: etree._Element, name: str) -> list[etree._Element]:
        return [c for c in el if isinstance(c.tag, str) and local(c) == name]

    def _text(self, el: etree._Element) -> etree._Element | None:
        found = self._children(el, "text")
        return found[0] if found else None

    def _table(self, table: etree._Element) -> None:
        if not table.get("id"):
            self.error(table, "decision table has no id", element_id=owner_id(table))
        inputs: list[tuple[str | None, bool]] = []  # (expression, expression is clean)
        for inp in self._children(table, "input"):
            expr_el = next(iter(self._children(inp, "inputExpression")), None)
            text_el = self._text(expr_el) if expr_el is not None else None
            expr = text_el.text if text_el is not None else None
            if expr is None or not expr.strip():
                self.warning(inp, "input has no expression; the engine falls back to looking up its label")
                inputs.append((None, False))
                continue
            inputs.append((expr, self.check_code(text_el, expr, "input expression")))
        outputs = self._children(table, "output")
        for rule in self._children(table, "rule"):
            if not rule.get("id"):
                self.error(rule, "rule has no id", element_id=owner_id(rule))
            entries = self._children(rule, "inputEntry")
            outs = self._children(rule, "outputEntry")
            if len(entries) > len(inputs) or len(outs) > len(outputs):
                self.error(rule, f"rule has {len(entries)} input and {len(outs)} output entries for "
                                 f"{len(inputs)} inputs and {len(outputs)} outputs")
                continue
            for entry, (expr, clean) in zip(entries, inputs, strict=False):
                self._input_entry(entry, expr, clean)
            for out in outs:
                text_el = self._text(out)
                if text_el is not None and text_el.text and text_el.text.strip():
                    self.check_code(text_el, text_el.text, "output entry")

    def _input_entry(self, entry: etree._Element, input_expr: str | None, input_clean: bool) -> None:
        """Check the expression DMNEngine.evaluate actually builds from an input entry."""
        text_el = self._text(entry)
        text = text_el.text if text_el is not None else None
        if text is None or text == "-":
            return  # '-' and empty entries match anything and are never evaluated
        if DMN_INPUT_NAME in _QUESTION_MARK.sub(DMN_INPUT_NAME, text):
            self.check_code(text_el, _QUESTION_MARK.sub(DMN_INPUT_NAME, text), f"input entry '{text}'")
            return
        lhs = input_expr if (input_expr is not None and input_clean) else DMN_INPUT_NAME
        try:
            tree = ast.parse(text)
            expr = f"({lhs}) == ({text})"
            if len(tree.body) == 1 and isinstance(getattr(tree.body[0], "value", None), ast.Tuple):
                self.warning(text_el, f"input entry '{text}' compares the input with a tuple, so it never "
                                      f"matches a single value; write: in ({text.strip()})")
        except SyntaxError:
            try:
                ast.parse(f"v {text}")
            except SyntaxError:
                self.error(text_el, f"input entry '{text}' is neither a value nor a comparison "
                                    "(e.g. 60, \"a\", >= 60, in [1, 2], -)")
                return
            expr = f"{lhs}{text}"
        except (ValueError, RecursionError, MemoryError) as exc:
            self.error(text_el, f"input entry cannot be checked ({exc.__class__.__name__})")
            return
        self.check_code(text_el, expr, f"input entry '{text}'")
