"""The built-in agents, one module each (each declares `SPEC`); app/agents/registry.py finds them."""
