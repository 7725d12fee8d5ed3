"""The billing core: periods, money, numbering; pure functions."""
