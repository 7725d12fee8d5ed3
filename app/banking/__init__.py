"""Reading bank statements (camt.053, MT940, CSV) into plain values; no database."""
