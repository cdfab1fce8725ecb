"""Suggestions: what the breakdowns say, as changes a marketer can apply safely."""
