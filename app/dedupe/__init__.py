"""The same complaint twice: exact and near-duplicates grouped so demand counts once."""
