"""CaseEngine and the one public way to change a case (``CaseEngine.commit``); timers, jobs, SLA clocks.

The names the HTTP edge (``mobile_api``) uses; it imports nothing else of this package."""

from engine.kernel.cases import CaseEngine, CaseResult, EngineDeps, utcnow
from engine.kernel.connectors import ConnectorContext
from engine.kernel.jobs import JobRunner
from engine.kernel.messages import Delivery, SystemKeys, check_message
from engine.kernel.sla import CST

__all__ = ["CaseEngine", "CaseResult", "ConnectorContext", "CST", "Delivery", "EngineDeps", "JobRunner", "SystemKeys",
           "check_message", "utcnow"]
