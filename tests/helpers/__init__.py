"""Reusable test helpers (servers, fixtures' building blocks) shared by unit and integration tests."""
