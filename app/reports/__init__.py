"""Reports: aggregate queries over invoices and runs (the SQL does the summing)."""
