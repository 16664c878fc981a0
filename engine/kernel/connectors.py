"""Service-task connectors: named functions a BPMN service task calls.

A connector gets the evaluated parameters and a ``ConnectorContext`` (which case, which actor,
why) so that reads of personal data can be logged with who, case and purpose. Real connectors
(shared-data look-ups, certificate library, issuance) register here by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from engine.errors import ModelError


@dataclass
class ConnectorContext:
    """Who calls, for which case and why. ``records`` collects what a connector wants stored
    (an access-log line, an issued certificate): the engine writes them in the same transaction
    as the case state, so they exist exactly when the step that caused them does."""

    case_no: str
    service: str
    actor: str | None = None
    purpose: str = ""
    records: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def record(self, kind: str, payload: dict[str, Any]) -> None:
        self.records.append((kind, payload))


Connector = Callable[[dict[str, Any], ConnectorContext], Any]


@dataclass
class ConnectorSpec:
    name: str
    func: Connector
    description: str = ""
    personal_data: bool = False


@dataclass
class ConnectorRegistry:
    """Connectors by name. The engine receives a registry; it never builds one itself."""

    _items: dict[str, ConnectorSpec] = field(default_factory=dict)

    def register(self, name: str, func: Connector, *, description: str = "",
                 personal_data: bool = False) -> None:
        if name in self._items:
            raise ValueError(f"connector {name!r} is already registered")
        self._items[name] = ConnectorSpec(name, func, description, personal_data)

    def connector(self, name: str, **kwargs: Any) -> Callable[[Connector], Connector]:
        """Decorator form of ``register``."""
        def wrap(func: Connector) -> Connector:
            self.register(name, func, **kwargs)
            return func
        return wrap

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def call(self, name: str, params: dict[str, Any], context: ConnectorContext) -> Any:
        spec = self._items.get(name)
        if spec is None:
            raise ModelError(f"service task calls unknown connector {name!r}; known: {', '.join(self.names())}")
        return spec.func(params, context)


__all__ = ["ConnectorContext", "ConnectorRegistry", "ConnectorSpec", "Connector"]
