"""Rules: the rule document (RULES.md), the metric catalogue, windows."""
