"""The process designer's back end: validate, deploy versions, migrate cases, heat-map stats."""

from engine.designer.bundle import Upload
from engine.designer.versions import ProcessDefinition

__all__ = ["ProcessDefinition", "Upload"]
