"""Templates custom agents are made from, one module each (each declares `SPEC` with `template=True`);
app/agents/registry.py finds them."""
