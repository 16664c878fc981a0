"""The citizen's side: identity (real-name binding), service catalogue, applications, case views.

The names the HTTP edge (``mobile_api``) uses; it imports nothing else of this package."""

from engine.citizen.applications import Applicant, ApplicationService
from engine.citizen.case_views import Case
from engine.citizen.catalog import Catalog, ServiceItem
from engine.citizen.identity import Citizen, RealNameVerifier, find_citizen, real_name_verifier_from_settings

__all__ = [
    "Applicant",
    "ApplicationService",
    "Case",
    "Catalog",
    "Citizen",
    "find_citizen",
    "real_name_verifier_from_settings",
    "RealNameVerifier",
    "ServiceItem",
]
