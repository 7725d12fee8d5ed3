"""Getting paid: recorded payments, collection per invoice, SEPA direct-debit batches and retries."""
