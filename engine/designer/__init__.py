"""The process designer's back end: validate, deploy versions, migrate cases, heat-map stats."""
