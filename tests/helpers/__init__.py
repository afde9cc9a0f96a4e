"""Shared test code that is not a fixture: auth headers, server processes, browser pages, rigs, constants."""
