"""The rules of the trade: what a valid use is, compliance rates, the weekly report."""
