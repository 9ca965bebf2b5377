"""The demo county generator, a pure package (no Flask, no database): `generate_county()`
builds a deterministic scenario dict in the format `zhuxun import` reads and the rules
engine checks. The server's `zhuxun demo`, the tests and the benchmarks all use it; see
`demo_county.generator` for what the county holds and which breaches it plants."""

from demo_county.generator import BREACH_KINDS, generate_county, summarize, write_scenario

__all__ = ["BREACH_KINDS", "generate_county", "summarize", "write_scenario"]
