"""Shared data contract, errors, hashing and durable I/O. No heavy imports here."""
