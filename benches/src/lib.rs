//! Shared fixtures for the kds benchmarks.
