"""The rule engine: claim due rules → evaluate → guard → act / queue → record."""
