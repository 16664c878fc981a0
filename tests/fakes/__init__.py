"""Local fake servers for external services, run for real over HTTP in tests."""
