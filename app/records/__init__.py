"""Records: legal entities, customers, contracts; their rules and the CSV importer."""
