"""Delivering invoices by e-mail."""
