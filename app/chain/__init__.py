"""The audit chain (GoBD): issued documents, payments and audit entries, each sealed by a hash chained to the
one before it, per legal entity. `content` says what is hashed, `sealing` appends to a chain in the
transaction that wrote the records, `verifying` recomputes a chain and names the first record that differs."""
